using System.Globalization;
using Loom.Datapath.Services.Ebpf;

namespace Loom.Agent.Services;

/// <summary>
/// The eBPF backend's conntrack GC (<see cref="LbConntrackGc"/>): a pass every GC interval (30 s by default), run with the
/// syncs' lock; on other backends the pass does nothing. Counted in loom_bpf_ct_gc_deleted_total and told in the
/// controller's status line.
/// </summary>
internal sealed partial class ServiceController
{
    private readonly SemaphoreSlim _conntrackGcSignal = new(0); // never released: the pass runs on its interval
    private readonly Lock _gcLock = new();
    private (DateTimeOffset At, LbConntrackGcResult Result)? _lastGc;
    private long _gcDeleted;

    private Task CollectConntrackAsync(CancellationToken ct)
    {
        if (_ops?.CollectConntrack() is { } r)
        {
            AgentMetrics.BpfConntrackGcDeleted.Inc(r.Deleted);
            lock (_gcLock)
            {
                _lastGc = (DateTimeOffset.UtcNow, r);
                _gcDeleted += r.Deleted;
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>"; ct gc HH:MM:SS: N left, N deleted (N in all)" once a pass ran, else empty.</summary>
    private string ConntrackGcSummary()
    {
        lock (_gcLock)
        {
            return _lastGc is not { } g ? "" : string.Create(CultureInfo.InvariantCulture,
                $"; ct gc {g.At:HH:mm:ss}: {g.Result.ConnTrackLeft + g.Result.SnatLeft} left, {g.Result.Deleted} deleted ({_gcDeleted} in all)");
        }
    }
}
