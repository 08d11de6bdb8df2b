using System.Collections.Concurrent;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Core.Watch;
using Loom.Datapath.Services;

namespace Loom.Agent.Services;

/// <summary>
/// From the caches' changes to reconciler rows. Both caches' subscriptions call in (never overlapping each other's own
/// calls, but in parallel with the other's), so the table is behind one lock. Objects that do not decode are kept aside
/// and reported with the model's refusals until a valid value or a delete replaces them.
/// </summary>
internal sealed partial class ServiceController
{
    private readonly Lock _tableLock = new();
    private readonly ServiceTable _table = new() { LocalNode = node.Name };
    private readonly Dictionary<string, Rejection> _tooBig = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ServicePortState> _rows = new(StringComparer.Ordinal); // what the reconciler was given
    private readonly ConcurrentDictionary<(string Kind, string Key), Rejection> _malformed = new();
    private readonly List<IDisposable> _subscriptions = [];
    private readonly HashSet<string> _localEndpoints = new(StringComparer.Ordinal);
    private ObjectCache<Service>? _serviceCache;
    private ObjectCache<Endpoint>? _endpointCache;
    private Task? _caches;
    private long _endpointsHandled;
    private long _backends;

    /// <summary>Starts both caches; returns once each has listed and its first batch (everything, as added) is in the table.</summary>
    private async Task StartCachesAsync(CancellationToken ct)
    {
        _serviceCache = new ObjectCache<Service>(store, Kinds.Service, TimeProvider.System, CacheError);
        _endpointCache = new ObjectCache<Endpoint>(store, Kinds.Endpoint, TimeProvider.System, CacheError);
        _caches = Task.WhenAll(_serviceCache.RunAsync(ct), _endpointCache.RunAsync(ct));
        await Task.WhenAll(_serviceCache.Synced, _endpointCache.Synced).WaitAsync(ct).ConfigureAwait(false);
        // A subscription's first batch holds every object as added; an empty cache sends none, so nothing to wait for.
        var services = _serviceCache.Snapshot.Count > 0 ? _serviceCache.Revision : 0;
        var endpoints = _endpointCache.Snapshot.Count > 0 ? _endpointCache.Revision : 0;
        _subscriptions.Add(_serviceCache.Subscribe(OnServices));
        _subscriptions.Add(_endpointCache.Subscribe(OnEndpoints));
        // A cache emptied between the count and the subscription sends no first batch either: stop waiting for it then.
        while ((Interlocked.Read(ref _serviceRevision) < services && _serviceCache.Snapshot.Count > 0)
               || (Interlocked.Read(ref _endpointsHandled) < endpoints && _endpointCache.Snapshot.Count > 0))
        {
            await Task.Delay(5, ct).ConfigureAwait(false);
        }
    }

    private Task OnServices(ChangeBatch<Service> batch, CancellationToken ct)
    {
        lock (_tableLock)
        {
            foreach (var c in batch.Changes)
            {
                Forget(Kinds.Service.Name, c);
                if (c.New is { } n)
                {
                    _table.SetService(c.Key, n.Value);
                }
                else
                {
                    _table.RemoveService(c.Key);
                }
            }

            Publish(batch.Since);
        }

        Interlocked.Exchange(ref _serviceRevision, batch.Revision);
        return Task.CompletedTask;
    }

    private Task OnEndpoints(ChangeBatch<Endpoint> batch, CancellationToken ct)
    {
        var newLocal = false;
        lock (_tableLock)
        {
            foreach (var c in batch.Changes)
            {
                Forget(Kinds.Endpoint.Name, c);
                if (c.New is { } n)
                {
                    _table.SetEndpoint(c.Key, n.Value);
                    newLocal |= n.Value.Node == node.Name && _localEndpoints.Add(c.Key);
                }
                else
                {
                    _table.RemoveEndpoint(c.Key);
                    _localEndpoints.Remove(c.Key);
                }
            }

            Publish(batch.Since);
            AgentMetrics.LocalEndpoints.Set(_localEndpoints.Count);
        }

        if (newLocal)
        {
            // A new local endpoint is a new pod veth: only then does the eBPF backend look for veths to attach to.
            _ops!.AttachNewInterfaces();
        }

        Interlocked.Exchange(ref _endpointsHandled, batch.Revision);
        return Task.CompletedTask;
    }

    /// <summary>The table's changes as reconciler rows, minus ports whose backends do not fit a Maglev table.</summary>
    private void Publish(long since)
    {
        var delta = _table.Drain();
        var maglev = Maglev();
        foreach (var key in delta.Removed)
        {
            _tooBig.Remove(key);
            Delete(key, since);
        }

        foreach (var port in delta.Upserts)
        {
            Put(port, maglev, since);
        }

        Report(!delta.IsEmpty);
    }

    /// <summary>
    /// On a switch of implementation: every programmed port judged again, since only eBPF's Maglev limits backends
    /// (a port refused for it is programmed by iptables, one iptables programmed is refused before eBPF's sync sees it).
    /// </summary>
    private void Refit()
    {
        lock (_tableLock)
        {
            var maglev = Maglev();
            foreach (var port in _table.Programmed.Values)
            {
                Put(port, maglev, 0);
            }

            Report(true);
        }
    }

    private bool Maglev() => _ops!.Wanted == ServiceProxyMode.Ebpf && node.Config.LoadBalancerAlgorithm == "maglev";

    private void Put(ServicePortState port, bool maglev, long since)
    {
        var key = ServiceTable.PortKey(port);
        if (TooBig(port, maglev, node.Config.MaglevTableSize) is { } rejection)
        {
            _tooBig[key] = rejection;
            Delete(key, since);
            return;
        }

        _tooBig.Remove(key);
        var old = _rows.GetValueOrDefault(key);
        _backends += port.Backends.Count - (old?.Backends.Count ?? 0);
        _rows[key] = port;
        _ops!.Stamp(key, since);
        _reconciler!.Upsert(key, port);
    }

    private void Report(bool changed)
    {
        if (changed)
        {
            AgentMetrics.ServiceEndpoints.Set(_backends);
            AgentMetrics.Services.Set(_rows.Count);
        }

        var refused = _table.Skipped().Select(s => new Rejection(Kinds.Service.Name, s.Service, s.Code, s.Text))
            .Concat(_tooBig.Values)
            .ToList();
        loops.Refused("services", refused);
    }

    private void Delete(string key, long since)
    {
        if (_rows.Remove(key, out var old))
        {
            _backends -= old.Backends.Count;
            _ops!.Stamp(key, since);
            _reconciler!.Delete(key);
        }
    }

    /// <summary>A port with more backends than the Maglev table has slots is refused (for that Service only).</summary>
    internal static Rejection? TooBig(ServicePortState port, bool maglev, int tableSize) =>
        maglev && port.Backends.Count > tableSize
            ? new Rejection(Kinds.Service.Name, $"{port.Name.Namespace}/{port.Name.Name}", "maglev-table-too-small",
                $"port {port.Name}: {port.Backends.Count} backends do not fit a Maglev table of {tableSize} slots (maglevTableSize)")
            : null;

    private void Forget<T>(string kind, Change<T> c)
        where T : class => _malformed.TryRemove((kind, c.Key), out _); // it decodes now, or is gone

    private void CacheError(CacheError e)
    {
        if (e.Key is not null)
        {
            // The cache treats it as absent (so do the Services); logged and counted once, until it decodes or goes.
            _malformed[(e.Kind, e.Key)] = new Rejection(e.Kind, e.Key, "malformed", e.Reason);
            loops.Refused("malformed " + e.Kind, [.. _malformed.Values.Where(r => r.Kind == e.Kind)]);
        }
        else
        {
            AgentMetrics.LoopFailures.WithLabels(e.Kind + " cache", e.Exception?.GetType().Name ?? "error").Inc();
            loops.Log($"{e.Kind} cache: {e.Reason}");
        }
    }
}
