using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using k8s.Models;
using Loom.Core.Model;
using Loom.Core.Pool;
using Loom.Core.Store;
using NetworkPolicy = Loom.Core.Model.NetworkPolicy;
using Node = Loom.Core.Model.Node;
using Service = Loom.Core.Model.Service;

namespace Loom.Kubernetes;

/// <summary>
/// Writes the informers' objects, translated, into the node-local store the agent runs on: a write only when the
/// translated object differs from what is stored, a delete when the API object is gone. Some Loom objects have several
/// sources (an Endpoint: its Pod and the EndpointSlices naming it; a Node: the Node and its LoomNode; a Service: the
/// Service and its slices, which resolve named target ports), so each change recomputes the Loom keys it touches.
/// The agent's own Node and the ContainerId of its own pods' Endpoints (written by CNI ADD) stay the agent's.
/// </summary>
internal sealed class StoreMirror(IStore store, string self, Sources sources) : IDisposable
{
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly Dictionary<string, HashSet<string>> _slicePods = new(StringComparer.Ordinal); // slice -> pods it targets
    private readonly Dictionary<string, string> _sliceService = new(StringComparer.Ordinal); // slice -> its Service
    private readonly Dictionary<string, HashSet<IPNetwork>> _claims = new(StringComparer.Ordinal); // node -> claims mirrored

    /// <summary>Objects the model cannot express, "kind key" -> why (shown by <c>loom status</c>).</summary>
    public ConcurrentDictionary<string, string> Skipped { get; } = new(StringComparer.Ordinal);

    public Task NodesAsync(IReadOnlyCollection<string> names, CancellationToken ct) => Locked(async () =>
    {
        foreach (var name in names)
        {
            var node = sources.Nodes.Get(name);
            var loom = LoomNodeStatus.Of(sources.LoomNodes.Get(name));
            if (name != self) // the agent writes its own Node
            {
                var model = node is null ? null : Translate.Node(node, loom, out var why) ?? SkipNull<Node>("node", name, why);
                await SyncAsync(Kinds.Node, name, model, ct).ConfigureAwait(false);
            }

            await ClaimsAsync(name, node is null ? [] : Translate.PodCidrs(node), ct).ConfigureAwait(false);
        }
    }, ct);

    /// <summary>
    /// CNI ADD writes this node's Endpoints into the local store with what the runtime knows: each such write is merged
    /// again with the Pod's view (labels, readiness, ports), keeping CNI's container ID and interface.
    /// </summary>
    public async Task FollowLocalEndpointsAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var revision = await store.GetRevisionAsync(ct).ConfigureAwait(false);
                await foreach (var e in store.WatchAsync(Kinds.Endpoint, revision, ct).ConfigureAwait(false))
                {
                    if (e.Value is { } ep && ep.Node == self && sources.Pods.Get(e.Key) is not null)
                    {
                        await PodsAsync([e.Key], ct).ConfigureAwait(false);
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (StoreCompactedException)
            {
                // Behind the trimmed history: start again from now (the writes missed were merged by their pod events).
            }
        }
    }

    public Task PodsAsync(IReadOnlyCollection<string> keys, CancellationToken ct) => Locked(() => EndpointsAsync(keys, ct), ct);

    public Task SlicesAsync(IReadOnlyCollection<string> keys, CancellationToken ct) => Locked(async () =>
    {
        var pods = new HashSet<string>(StringComparer.Ordinal);
        var services = new HashSet<string>(StringComparer.Ordinal);
        foreach (var key in keys)
        {
            if (_slicePods.Remove(key, out var old))
            {
                pods.UnionWith(old);
            }

            if (_sliceService.Remove(key, out var oldService))
            {
                services.Add(oldService);
            }

            if (sources.Slices.Get(key) is { } slice)
            {
                var targets = Translate.SliceConditions(slice).Select(c => c.PodKey).ToHashSet(StringComparer.Ordinal);
                _slicePods[key] = targets;
                pods.UnionWith(targets);
                if (Translate.Get(slice.Metadata?.Labels, Translate.ServiceNameLabel) is { } svc)
                {
                    _sliceService[key] = $"{slice.Metadata!.NamespaceProperty}/{svc}";
                    services.Add(_sliceService[key]);
                }
            }
        }

        await EndpointsAsync(pods, ct).ConfigureAwait(false);
        await ServicesCoreAsync(services, ct).ConfigureAwait(false);
    }, ct);

    public Task ServicesAsync(IReadOnlyCollection<string> keys, CancellationToken ct) => Locked(() => ServicesCoreAsync(keys, ct), ct);

    public Task NamespacesAsync(IReadOnlyCollection<string> names, CancellationToken ct) => Locked(async () =>
    {
        foreach (var name in names)
        {
            await SyncAsync(Kinds.Namespace, name, sources.Namespaces.Get(name) is { } n ? Translate.Namespace(n) : null, ct).ConfigureAwait(false);
        }
    }, ct);

    public Task PoliciesAsync(IReadOnlyCollection<string> keys, CancellationToken ct) => Locked(async () =>
    {
        foreach (var key in keys)
        {
            var p = sources.Policies.Get(key);
            var model = p is null ? null : Translate.Policy(p, out var why) ?? SkipNull<NetworkPolicy>("networkpolicy", key, why);
            await SyncAsync(Kinds.NetworkPolicy, key, model, ct).ConfigureAwait(false);
        }
    }, ct);

    private async Task ServicesCoreAsync(IEnumerable<string> keys, CancellationToken ct)
    {
        foreach (var key in keys)
        {
            var s = sources.Services.Get(key);
            var slices = _sliceService.Where(kv => kv.Value == key).Select(kv => sources.Slices.Get(kv.Key)).OfType<V1EndpointSlice>();
            var model = s is null ? null : Translate.Service(s, slices, out var why) ?? SkipNull<Service>("service", key, why);
            await SyncAsync(Kinds.Service, key, model, ct).ConfigureAwait(false);
        }
    }

    private async Task EndpointsAsync(IEnumerable<string> keys, CancellationToken ct)
    {
        foreach (var key in keys)
        {
            var pod = sources.Pods.Get(key);
            var stored = await store.GetAsync(Kinds.Endpoint, key, ct).ConfigureAwait(false);
            if (pod is null)
            {
                await SyncAsync(Kinds.Endpoint, key, null, ct).ConfigureAwait(false);
                continue;
            }

            var model = Translate.Endpoint(pod, SliceReady(key), out var why);
            if (model is null)
            {
                Skip("endpoint", key, why);
                if (stored?.Value.Node == self)
                {
                    continue; // CNI ADD wrote it before the kubelet reported the pod's address: keep it
                }
            }
            else if (model.Node == self)
            {
                // The sandbox's container ID and interface are CNI's (the endpoint reconciler matches them with IPAM);
                // labels, readiness and ports are the API's.
                model = model with { ContainerId = stored?.Value.ContainerId ?? "", Interface = stored?.Value.Interface ?? model.Interface };
            }

            await SyncAsync(Kinds.Endpoint, key, model, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Any slice calling the pod ready makes it ready; slices naming it, none ready: not; none: the pod's own condition.</summary>
    private bool? SliceReady(string podKey)
    {
        bool? ready = null;
        foreach (var (slice, pods) in _slicePods)
        {
            if (pods.Contains(podKey) && sources.Slices.Get(slice) is { } s)
            {
                foreach (var (pod, r) in Translate.SliceConditions(s))
                {
                    if (pod == podKey)
                    {
                        ready = (ready ?? false) || r;
                    }
                }
            }
        }

        return ready;
    }

    /// <summary>The node's pod CIDR claims, as the controller manager allocated them (the agent's peer check wants a claim per block).</summary>
    private async Task ClaimsAsync(string node, IReadOnlyList<IPNetwork> cidrs, CancellationToken ct)
    {
        var old = _claims.GetValueOrDefault(node) ?? [];
        foreach (var gone in old.Where(c => !cidrs.Contains(c)))
        {
            if (await store.GetAsync(Kinds.PodCidr, gone.ToString(), ct).ConfigureAwait(false) is { } claim && claim.Value.Node == node)
            {
                await store.DeleteAsync(Kinds.PodCidr, gone.ToString(), claim.Revision, ct).ConfigureAwait(false);
            }
        }

        foreach (var cidr in cidrs)
        {
            await SyncAsync(Kinds.PodCidr, cidr.ToString(), new PodCidrClaim(cidr, node), ct).ConfigureAwait(false);
        }

        if (cidrs.Count == 0)
        {
            _claims.Remove(node);
        }
        else
        {
            _claims[node] = [.. cidrs];
        }
    }

    private T? SkipNull<T>(string kind, string key, string? why)
        where T : class
    {
        Skip(kind, key, why);
        return null;
    }

    private void Skip(string kind, string key, string? why)
    {
        if (why is not null)
        {
            Skipped[$"{kind} {key}"] = why;
        }
    }

    private async Task SyncAsync<T>(ObjectKind<T> kind, string key, T? desired, CancellationToken ct)
        where T : class
    {
        var existing = await store.GetAsync(kind.Name, key, ct).ConfigureAwait(false);
        if (desired is null)
        {
            if (existing is not null)
            {
                await store.DeleteAsync(kind.Name, key, cancellationToken: ct).ConfigureAwait(false);
            }

            return;
        }

        Skipped.TryRemove($"{kind.Name} {key}", out _);
        var json = JsonSerializer.Serialize(desired, kind.TypeInfo);
        if (existing?.Value != json)
        {
            await store.PutAsync(kind.Name, key, json, cancellationToken: ct).ConfigureAwait(false);
        }
    }

    public void Dispose() => _lock.Dispose();

    private async Task Locked(Func<Task> body, CancellationToken ct)
    {
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await body().ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }
}

/// <summary>The informers the mirror reads from.</summary>
internal sealed record Sources(
    Informer<V1Node, V1NodeList> Nodes,
    Informer<LoomNodeObject, LoomNodeList> LoomNodes,
    Informer<V1Pod, V1PodList> Pods,
    Informer<V1EndpointSlice, V1EndpointSliceList> Slices,
    Informer<V1Service, V1ServiceList> Services,
    Informer<V1Namespace, V1NamespaceList> Namespaces,
    Informer<V1NetworkPolicy, V1NetworkPolicyList> Policies)
{
    public IReadOnlyList<IInformer> All => [Nodes, Pods, Services, Slices, Namespaces, Policies, LoomNodes];
}
