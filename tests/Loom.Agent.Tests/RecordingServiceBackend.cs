using Loom.Agent.Services;
using Loom.Core.Model;
using Loom.Datapath.Services;

namespace Loom.Agent.Tests;

/// <summary>A service backend that records what it is handed (no kernel); optionally fails as a too-small Maglev table would.</summary>
internal sealed class RecordingServiceBackend(ServiceProxyMode kind) : IServiceBackend, IDisposable
{
    public ServiceProxyMode Kind => kind;

    public string Name => ServiceBackendOperations.Name(kind);

    public bool FailSync { get; init; }

    /// <summary>As a Maglev table: a port with more backends than this fails the whole write.</summary>
    public int MaxBackends { get; init; } = int.MaxValue;

    public List<ServicePortState> LastSync { get; private set; } = [];

    public bool NeedsFullSync { get; private set; } = true;

    public int Syncs { get; private set; }

    public bool Disposed { get; private set; }

    public List<(List<ServicePortState> Changed, List<ServicePortState> Removed)> Updates { get; } = [];

    public void Sync(IReadOnlyCollection<ServicePortState> desired)
    {
        Syncs++;
        if (FailSync)
        {
            throw new InvalidOperationException($"{Name}: sync failed");
        }

        Fit(desired);
        LastSync = [.. desired];

        NeedsFullSync = false;
    }

    public void Update(IReadOnlyCollection<ServicePortState> changed, IReadOnlyCollection<ServicePortState> removed)
    {
        Fit(changed);
        Updates.Add(([.. changed], [.. removed]));
    }

    public void RequestFullSync() => NeedsFullSync = true;

    public void Flush() => NeedsFullSync = true;

    public string Explain(ServicePortState service) => "";

    public void Dispose() => Disposed = true;

    private void Fit(IReadOnlyCollection<ServicePortState> ports)
    {
        if (ports.FirstOrDefault(p => p.Backends.Count > MaxBackends) is { } big)
        {
            NeedsFullSync = true;
            throw new ArgumentException($"{big.Backends.Count} backends do not fit a Maglev table of {MaxBackends} slots");
        }
    }
}
