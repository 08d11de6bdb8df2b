using System.Collections.Concurrent;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Core.Watch;

namespace Loom.Agent;

/// <summary>
/// The Services and Endpoints the service sync computes from, held in memory by a cache each (list once, then watch),
/// so a pass no longer lists the store. A change batch applied to a cache wakes the sync loop; objects that do not
/// decode are kept aside and reported by every pass (as the tolerant list did) until a valid value or a delete
/// replaces them.
/// </summary>
internal sealed partial class AgentHost
{
    private readonly ConcurrentDictionary<(string Kind, string Key), Rejection> _malformedObjects = new();
    private ObjectCache<Service>? _serviceCache;
    private ObjectCache<Endpoint>? _endpointCache;

    /// <summary>Starts both caches and waits until each has listed once; returns the task that runs them.</summary>
    private async Task<Task> StartServiceCachesAsync(CancellationToken ct)
    {
        _serviceCache = new ObjectCache<Service>(store, Kinds.Service, TimeProvider.System, CacheError);
        _endpointCache = new ObjectCache<Endpoint>(store, Kinds.Endpoint, TimeProvider.System, CacheError);
        var run = Task.WhenAll(_serviceCache.RunAsync(ct), _endpointCache.RunAsync(ct));
        _ = _serviceCache.Subscribe(OnCacheChange);
        _ = _endpointCache.Subscribe(OnCacheChange);
        await Task.WhenAll(_serviceCache.Synced, _endpointCache.Synced).WaitAsync(ct).ConfigureAwait(false);
        return run;
    }

    private Task OnCacheChange<T>(ChangeBatch<T> batch, CancellationToken ct)
        where T : class
    {
        var kind = typeof(T) == typeof(Service) ? Kinds.Service.Name : Kinds.Endpoint.Name;
        foreach (var c in batch.Changes.Where(c => c.New is not null))
        {
            _malformedObjects.TryRemove((kind, c.Key), out _); // decodes now
        }

        _serviceSignal.Release();
        return Task.CompletedTask;
    }

    private void CacheError(CacheError e)
    {
        if (e.Key is not null)
        {
            // The cache treats it as absent; the pass reports it with the other refused objects.
            _malformedObjects[(e.Kind, e.Key)] = new Rejection(e.Kind, e.Key, "malformed", e.Reason);
            _serviceSignal.Release();
        }
        else
        {
            AgentMetrics.LoopFailures.WithLabels(e.Kind + " cache", e.Exception?.GetType().Name ?? "error").Inc();
            Log($"{e.Kind} cache: {e.Reason}");
        }
    }

    /// <summary>
    /// Relevant store events for the service loop's own watch: the node's config; a deleted Service or Endpoint only
    /// to forget it as malformed (the caches emit no change for an object they never decoded).
    /// </summary>
    private bool ServiceWatchEvent(StoreEvent e)
    {
        if (e.Type == StoreEventType.Delete && (e.Kind == Kinds.Service.Name || e.Kind == Kinds.Endpoint.Name))
        {
            return _malformedObjects.TryRemove((e.Kind, e.Key), out _);
        }

        return e.Kind == Kinds.NodeConfig.Name && e.Key == _node;
    }

    /// <summary>Services and Endpoints as the caches hold them now (by key, as a list gave them), with the malformed ones.</summary>
    private (List<Versioned<Service>> Services, List<Versioned<Endpoint>> Endpoints) CachedServiceObjects(List<Rejection> rejected)
    {
        var services = _serviceCache!.Snapshot.Values.OrderBy(v => v.Key, StringComparer.Ordinal).ToList();
        var endpoints = _endpointCache!.Snapshot.Values.OrderBy(v => v.Key, StringComparer.Ordinal).ToList();
        rejected.AddRange(_malformedObjects.Values.OrderBy(r => r.Kind, StringComparer.Ordinal).ThenBy(r => r.Key, StringComparer.Ordinal));
        return (services, endpoints);
    }
}
