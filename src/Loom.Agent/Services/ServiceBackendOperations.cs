using System.Diagnostics;
using Loom.Core.Model;
using Loom.Core.Reconcile;
using Loom.Datapath.Services;
using Loom.Datapath.Services.Ebpf;

namespace Loom.Agent.Services;

/// <summary>
/// The services reconciler's target: the node's service proxy implementation. A batch of changed ports goes to
/// <see cref="IServiceBackend.Update"/> (only those ports' rules or map entries are written); when the backend does not
/// know what the kernel holds (its first write, after a failure) the batch becomes a full <see cref="IServiceBackend.Sync"/>
/// of every desired port. The full pass re-reads the kernel and repairs drift, and is also how the implementation is
/// switched (make before break: the new one programs everything, then every other one is flushed). One lock serialises
/// every call into the backend, which is not thread-safe. After each successful write on iptables or nftables, the
/// UDP conntrack entries it left stale go (<see cref="ConntrackCleanup"/>, through <paramref name="cleanConntrack"/>;
/// none when null), and the health-check node ports follow what was written (<paramref name="healthChecks"/>).
/// </summary>
internal sealed class ServiceBackendOperations(
    Func<ServiceProxyMode, IServiceBackend> create,
    ServiceProxyMode kind,
    Func<IReadOnlyDictionary<string, ServicePortState>> desired,
    AgentLoops loops,
    Func<IReadOnlyCollection<ConntrackFilter>, int>? cleanConntrack = null,
    HealthCheckServer? healthChecks = null) : IBatchReconcileOperations<string, ServicePortState>, IDisposable
{
    private static readonly ServiceProxyMode[] All = [ServiceProxyMode.Iptables, ServiceProxyMode.Nftables, ServiceProxyMode.Ebpf];

    private readonly Lock _gate = new();
    private readonly Dictionary<string, ServicePortState> _applied = new(StringComparer.Ordinal);
    private bool _wroteOnce;
    private readonly Dictionary<string, long> _since = new(StringComparer.Ordinal);
    private readonly BulkSyncTrim _trim = new(TimeProvider.System);
    private IServiceBackend? _backend;
    private ServiceProxyMode _kind = kind;
    private ServiceProxyMode _wanted = kind;
    private long _applies;
    private bool _flushOthers;
    private string? _lastFlushError;

    public string BackendName => _backend?.Name ?? Name(_wanted);

    public ServiceProxyMode Kind => _kind;

    /// <summary>The implementation asked for: <see cref="Kind"/> until the next full pass switches to it.</summary>
    public ServiceProxyMode Wanted
    {
        get
        {
            lock (_gate)
            {
                return _wanted;
            }
        }
    }

    public long Applies => Interlocked.Read(ref _applies);

    /// <summary>Asks for another implementation; the next full pass switches to it.</summary>
    public bool Want(ServiceProxyMode next)
    {
        lock (_gate)
        {
            var changed = next != _wanted;
            _wanted = next;
            return changed;
        }
    }

    /// <summary>When the store event behind <paramref name="key"/>'s change reached the agent (kept until it is written).</summary>
    public void Stamp(string key, long since)
    {
        if (since == 0)
        {
            return;
        }

        lock (_gate)
        {
            _since.TryAdd(key, since);
        }
    }

    public Task ApplyBatchAsync(IReadOnlyList<RowChange<string, ServicePortState>> changes, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var backend = Backend();
            var sw = Stopwatch.StartNew();
            if (backend.NeedsFullSync)
            {
                FullSync(backend, desired());
            }
            else
            {
                var changed = new List<ServicePortState>();
                var removed = new List<ServicePortState>();
                foreach (var c in changes)
                {
                    var applied = _applied.GetValueOrDefault(c.Key);
                    if (!c.IsDelete)
                    {
                        changed.Add(c.Value!);
                    }

                    // The eBPF maps are keyed by frontend: a port whose ClusterIP, protocol or port moved leaves its old one behind.
                    if (applied is not null && (c.IsDelete || applied.Frontend != c.Value!.Frontend))
                    {
                        removed.Add(applied);
                    }
                }

                // Planned from what was programmed before this write; deleted only once it succeeded.
                var stale = cleanConntrack is null
                    ? []
                    : changes.SelectMany(c => ConntrackCleanup.Plan(_applied.GetValueOrDefault(c.Key), c.IsDelete ? null : c.Value)).Distinct().ToList();
                Run(backend, () => backend.Update(changed, removed));
                foreach (var c in changes)
                {
                    var value = c.IsDelete ? null : c.Value;
                    Record(c.Key, value);
                    healthChecks?.Apply(c.Key, value);
                }

                CleanConntrack(backend, stale);
                _trim.Wrote(changes.Count);
            }

            AgentMetrics.ServiceSyncDuration.WithLabels(backend.Name).Observe(sw.Elapsed.TotalSeconds);
            Observe(changes.Select(c => c.Key));
            if (_flushOthers)
            {
                // Make before break: this implementation answers for every Service now.
                FlushOthers();
            }
        }

        return Task.CompletedTask;
    }

    public Task UpdateAsync(string key, ServicePortState value, CancellationToken cancellationToken) =>
        ApplyBatchAsync([new RowChange<string, ServicePortState>(key, value, false)], cancellationToken);

    public Task DeleteAsync(string key, CancellationToken cancellationToken) =>
        ApplyBatchAsync([new RowChange<string, ServicePortState>(key, null, true)], cancellationToken);

    /// <summary>
    /// The full pass: re-reads the kernel and rewrites what differs (the backends repair drift without counting it, so
    /// 0 is returned); on a requested switch, programs everything with the new implementation, then flushes the others.
    /// </summary>
    public Task<int> PruneAsync(IReadOnlyDictionary<string, ServicePortState> rows, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_backend is null || _wanted != _kind)
            {
                var previous = _backend;
                var next = create(_wanted);
                try
                {
                    FullSync(next, rows);
                }
                catch
                {
                    // The previous one still answers; the next full pass tries a fresh instance.
                    (next as IDisposable)?.Dispose();
                    throw;
                }

                loops.Log(previous is null ? $"service backend {next.Name}" : $"service backend switched from {previous.Name} to {next.Name}");
                (previous as IDisposable)?.Dispose();
                _backend = next;
                _kind = _wanted;
                _flushOthers = true;
                FlushOthers();
            }
            else
            {
                _backend.RequestFullSync();
                FullSync(_backend, rows);
                ReleaseKernelNat();
            }
        }

        return Task.FromResult(0);
    }

    /// <summary>
    /// eBPF only: each lb4 map's entries / max entries, counted at most every <see cref="EbpfServiceBackend.FillInterval"/>
    /// (a key walk); empty on the rule backends, before the first write, and if the maps cannot be read (status and
    /// metrics must not fail for it).
    /// </summary>
    public IReadOnlyList<LbMapFill> MapFill()
    {
        lock (_gate)
        {
            try
            {
                return _backend is EbpfServiceBackend { IsLoaded: true } ebpf ? ebpf.MapFill() : [];
            }
            catch (IOException)
            {
                return []; // BpfException: the next sync reports what is wrong with the maps
            }
        }
    }

    /// <summary>eBPF only: puts the tc programs on pod veths that appeared (a pod was added on this node).</summary>
    public void AttachNewInterfaces()
    {
        lock (_gate)
        {
            (_backend as EbpfServiceBackend)?.AttachNewInterfaces();
        }
    }

    /// <summary>One conntrack GC pass of the eBPF backend, serialised with its syncs; null on other backends.</summary>
    public LbConntrackGcResult? CollectConntrack()
    {
        lock (_gate)
        {
            return (_backend as EbpfServiceBackend)?.CollectConntrack();
        }
    }

    /// <summary>The eBPF backend's GC interval (its options'), else the default.</summary>
    public TimeSpan ConntrackGcInterval
    {
        get
        {
            lock (_gate)
            {
                return (_backend as EbpfServiceBackend)?.Options.ConnTrack.GcInterval ?? new LbConntrackLifetimes().GcInterval;
            }
        }
    }

    public string Explain(ServicePortState port)
    {
        lock (_gate)
        {
            return _backend?.Explain(port) ?? "# no service backend yet\n";
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            (_backend as IDisposable)?.Dispose();
            _backend = null;
        }

        _trim.Dispose();
    }

    private IServiceBackend Backend()
    {
        if (_backend is null)
        {
            // The first write: the backend this node wants; once it has written, no other implementation's rules stay.
            _backend = create(_kind);
            _flushOthers = true;
            loops.Log($"service backend {_backend.Name}");
        }

        return _backend;
    }

    private void FullSync(IServiceBackend backend, IReadOnlyDictionary<string, ServicePortState> rows)
    {
        var all = rows.Values.ToList();
        Run(backend, () => backend.Sync(all));
        // The first write after start knows nothing of what the previous run served: every UDP Service would look newly
        // active and every live UDP flow would lose its entry, so nothing is cleaned then.
        var stale = cleanConntrack is null || !_wroteOnce ? [] : ConntrackCleanup.Plan(_applied, rows);
        _wroteOnce = true;
        _applied.Clear();
        foreach (var (k, v) in rows)
        {
            _applied[k] = v;
        }

        healthChecks?.Set(_applied);
        CleanConntrack(backend, stale);
        _trim.Wrote(all.Count);

        // Everything stamped is settled by a full pass, deletes included (their keys are not in the rows).
        Observe([.. _since.Keys]);
    }

    private void Run(IServiceBackend backend, Action apply)
    {
        try
        {
            apply();
            if (backend is EbpfServiceBackend ebpf)
            {
                // Services a full lb4 map left out (the write itself went through).
                loops.Refused("service maps", [.. ebpf.Skipped.Select(s => new Rejection(Loom.Core.Store.Kinds.Service.Name, s.Service, s.Code, s.Text))]);
            }
            else
            {
                loops.Refused("service maps", []); // no lb4 maps now: refusals from before a switch away are over
            }

            AgentMetrics.ServiceSyncs.WithLabels(backend.Name, "ok").Inc();
            Interlocked.Increment(ref _applies);
        }
        catch (Exception e)
        {
            // The reconciler keeps the rows and retries them with backoff; the next write is a full one.
            AgentMetrics.ServiceSyncs.WithLabels(backend.Name, "error").Inc();
            AgentMetrics.LoopFailures.WithLabels("service sync", e.GetType().Name).Inc();
            loops.Log($"service sync failed ({backend.Name}), retrying with backoff: {AgentLoops.Describe(e)}");
            throw;
        }
    }

    /// <summary>
    /// Deletes the conntrack entries a successful write left stale, counted and logged once per write. eBPF keeps its own
    /// CT map (the kernel's table is not on its path); a failure here is logged, the write stands.
    /// </summary>
    private void CleanConntrack(IServiceBackend backend, List<ConntrackFilter> stale)
    {
        if (stale.Count == 0 || cleanConntrack is null || backend.Name == Name(ServiceProxyMode.Ebpf))
        {
            return;
        }

        try
        {
            var deleted = cleanConntrack(stale);
            if (deleted > 0)
            {
                AgentMetrics.ConntrackEntriesDeleted.Inc(deleted);
                loops.Log($"conntrack: {deleted} stale UDP entr{(deleted == 1 ? "y" : "ies")} deleted ({string.Join(", ", stale.Take(5))}{(stale.Count > 5 ? ", ..." : "")})");
            }
        }
#pragma warning disable CA1031 // stale entries only delay clients until they expire: the rules are written, the services keep going
        catch (Exception e)
#pragma warning restore CA1031
        {
            AgentMetrics.LoopFailures.WithLabels("conntrack cleanup", e.GetType().Name).Inc();
            loops.Log($"conntrack cleanup failed ({backend.Name}): {AgentLoops.Describe(e)}");
        }
    }

    private void Record(string key, ServicePortState? value)
    {
        if (value is null)
        {
            _applied.Remove(key);
        }
        else
        {
            _applied[key] = value;
        }
    }

    private void Observe(IEnumerable<string> keys)
    {
        if (_since.Count == 0)
        {
            return;
        }

        var now = Stopwatch.GetTimestamp();
        foreach (var key in keys)
        {
            if (_since.Remove(key, out var since))
            {
                AgentMetrics.ServiceEventToWrite.Observe(Stopwatch.GetElapsedTime(since, now).TotalSeconds);
            }
        }
    }

    // Flows kube-proxy's rules DNATed keep their kernel translation after those rules go (KernelNatHold).
    private void HoldKernelNat()
    {
        try
        {
            if (KernelNatHold.HoldIfNeeded())
            {
                loops.Log($"kernel NAT held ({KernelNatHold.Table}) for flows opened through the rules being flushed");
            }
        }
#pragma warning disable CA1031 // without the hold those flows die, as they would without Loom: the switch goes on
        catch (Exception e)
#pragma warning restore CA1031
        {
            loops.Log($"kernel NAT not held: {AgentLoops.Describe(e)}");
        }
    }

    private void ReleaseKernelNat()
    {
        try
        {
            if (KernelNatHold.ReleaseIfIdle())
            {
                loops.Log($"kernel NAT released ({KernelNatHold.Table}): no flow it translated is left");
            }
        }
#pragma warning disable CA1031 // a table left a while longer is harmless: the next full pass tries again
        catch (Exception e)
#pragma warning restore CA1031
        {
            loops.Log($"kernel NAT hold not released: {AgentLoops.Describe(e)}");
        }
    }

    /// <summary>
    /// Removes what the other implementations left. A failure (e.g. a tool the node lacks) does not fail the write that
    /// already succeeded: it is logged once and tried again after the next write.
    /// </summary>
    private void FlushOthers()
    {
        var failed = false;
        if (_kind == ServiceProxyMode.Ebpf)
        {
            HoldKernelNat();
        }

        foreach (var other in All.Where(b => b != _kind))
        {
            var old = create(other);
            try
            {
                old.Flush();
            }
#pragma warning disable CA1031 // whatever the other implementation's cleanup throws, the current one keeps serving
            catch (Exception e)
#pragma warning restore CA1031
            {
                failed = true;
                var text = $"flushing {old.Name} failed: {AgentLoops.Describe(e)}";
                if (text != _lastFlushError)
                {
                    loops.Log(text + "; tried again after the next write");
                    _lastFlushError = text;
                }
            }
            finally
            {
                (old as IDisposable)?.Dispose();
            }
        }

        _flushOthers = failed;
        if (!failed)
        {
            _lastFlushError = null;
        }
    }

    internal static string Name(ServiceProxyMode kind) => kind.ToString().ToLowerInvariant();
}
