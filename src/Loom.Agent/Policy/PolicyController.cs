using Loom.Core.Controllers;
using Loom.Core.Model;
using Loom.Core.Policy;
using Loom.Core.Store;
using Loom.Core.Watch;
using Loom.Datapath.Policy;

namespace Loom.Agent.Policy;

/// <summary>
/// NetworkPolicy on one node, as Cilium's agent: every local endpoint gets the cluster-wide identity of its label set
/// (allocated in the store), every node's ipcache maps every pod IP to its identity, and each local endpoint's
/// policy, compiled from the policies that select it, is written into the BPF policy maps its host veth's tc programs
/// read (bpf/policy.c). Caches of endpoints, policies, namespaces, identities and nodes signal one pass loop; a pass
/// recomputes the whole desired state (a node has tens of endpoints) and the datapath writes only the differences.
/// Partial files: .Pass (desired state to the kernel), .Info (status and explain).
/// </summary>
internal sealed partial class PolicyController(NodeContext node, IStore store, AgentLoops loops, Func<IReadOnlyList<string>> nodeDevices)
    : IController, IDisposable
{
    private readonly SemaphoreSlim _signal = new(0);
    private readonly List<IDisposable> _subscriptions = [];
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string Kind, string Key), Rejection> _malformed = new();
    private readonly IdentityAllocator _identities = new(store, node.Name);
    private ObjectCache<Endpoint>? _endpoints;
    private ObjectCache<NetworkPolicy>? _policies;
    private ObjectCache<ClusterNamespace>? _namespaces;
    private ObjectCache<SecurityIdentity>? _identityCache;
    private ObjectCache<Node>? _nodes;
    private Task? _caches;
    private long _configRevision;
    private BpfPolicy? _datapath;

    public string Name => "policy";

    /// <summary>bpffs directory of the policy maps: under the agent's <c>bpfPinDir</c>.</summary>
    internal string PinDirectory => Path.Combine(node.Config.BpfPinDir, "policy");

    /// <summary>The mode in force after the last pass (the node's override, else the cluster's).</summary>
    public PolicyEnforcementMode Mode { get; private set; } = PolicyEnforcementMode.Default;

    /// <summary>Raised after a pass that changed the mode (host routing's delivery follows it).</summary>
    public event Action? ModeChanged;

    public async Task StartAsync(CancellationToken ct)
    {
        if (_caches is null)
        {
            _configRevision = await store.GetRevisionAsync(ct).ConfigureAwait(false);
            _endpoints = new ObjectCache<Endpoint>(store, Kinds.Endpoint, TimeProvider.System, CacheError);
            _policies = new ObjectCache<NetworkPolicy>(store, Kinds.NetworkPolicy, TimeProvider.System, CacheError);
            _namespaces = new ObjectCache<ClusterNamespace>(store, Kinds.Namespace, TimeProvider.System, CacheError);
            _identityCache = new ObjectCache<SecurityIdentity>(store, Kinds.Identity, TimeProvider.System, CacheError);
            _nodes = new ObjectCache<Node>(store, Kinds.Node, TimeProvider.System, CacheError);
            _caches = Task.WhenAll(_endpoints.RunAsync(ct), _policies.RunAsync(ct), _namespaces.RunAsync(ct), _identityCache.RunAsync(ct), _nodes.RunAsync(ct));
            await Task.WhenAll(_endpoints.Synced, _policies.Synced, _namespaces.Synced, _identityCache.Synced, _nodes.Synced).WaitAsync(ct).ConfigureAwait(false);
            _subscriptions.Add(_endpoints.Subscribe(Changed));
            _subscriptions.Add(_policies.Subscribe(Changed));
            _subscriptions.Add(_namespaces.Subscribe(Changed));
            _subscriptions.Add(_identityCache.Subscribe(Changed));
            _subscriptions.Add(_nodes.Subscribe(Changed));
        }

        await PassAsync(ct).ConfigureAwait(false);
        loops.Log($"policy: {Summary}");
    }

    public async Task RunAsync(CancellationToken ct)
    {
        var watch = loops.WatchAsync(null, _configRevision,
            e => (e.Kind == Kinds.NodeConfig.Name && e.Key == node.Name) || e.Kind == Kinds.ClusterConfig.Name, _signal, "policy mode", ct);
        // Every 30 s anyway (a safety net, as the other controllers' passes: every change signals a pass, and a pod's
        // ADD runs one): a veth that appeared before its endpoint, the identities nobody holds any more. It was 10 s,
        // a wake-up of an idle agent that each pass reads the links and maps for.
        var loop = loops.RunOnSignalAsync(_signal, PassAsync, "policy", ct, TimeSpan.FromSeconds(30));
        Task[] all = [watch, loop, _caches!];
        await Task.WhenAny(all).ConfigureAwait(false);
        ct.ThrowIfCancellationRequested();
        await Task.WhenAll(all).ConfigureAwait(false);
    }

    /// <summary>
    /// A pod was just wired (endpoint-add): its veth gets its programs and policy before the plugin returns. Returns why
    /// not when its policy could not be put in place (the ADD then fails and the runtime retries it, as when Cilium
    /// cannot create an endpoint); null when it is in place, or when the store's watch is too slow to tell (the next
    /// pass programs it).
    /// </summary>
    public async Task<string?> EndpointAddedAsync(string key, long revision, CancellationToken ct)
    {
        if (_endpoints is null)
        {
            return null;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(5));
        try
        {
            await _endpoints.WaitForRevisionAsync(revision, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            loops.Log($"policy: endpoint {key} not seen by the cache after 5 s; the next pass programs it");
            _signal.Release();
            return null;
        }

        try
        {
            await PassAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException && !AgentLoops.IsBug(e))
        {
            _signal.Release(); // the loop's pass retries, and reports
            lock (_local)
            {
                if (!_local.ContainsKey(key))
                {
                    return e.Message;
                }
            }
        }

        lock (_local)
        {
            return _failedClosed.Contains(key) ? "isolated with no rules (see the agent's log)" : null;
        }
    }

    private Task Changed<T>(ChangeBatch<T> batch, CancellationToken ct)
        where T : class
    {
        foreach (var c in batch.Changes)
        {
            foreach (var k in _malformed.Keys.Where(k => k.Key == c.Key))
            {
                _malformed.TryRemove(k, out _); // it decodes now, or is gone
            }
        }

        _signal.Release();
        return Task.CompletedTask;
    }

    /// <summary>An object that does not decode is absent for policy (as for Services): reported once, never with a trace.</summary>
    private void CacheError(CacheError e)
    {
        if (e.Key is not null && (e.Kind == Kinds.Node.Name || e.Kind == Kinds.Endpoint.Name))
        {
            return; // the network and service controllers report these
        }

        if (e.Key is not null)
        {
            _malformed[(e.Kind, e.Key)] = new Rejection(e.Kind, e.Key, "malformed", e.Reason);
            loops.Refused("policy: malformed " + e.Kind, [.. _malformed.Values.Where(r => r.Kind == e.Kind)]);
        }
        else
        {
            AgentMetrics.LoopFailures.WithLabels("policy " + e.Kind + " cache", e.Exception?.GetType().Name ?? "error").Inc();
            loops.Log($"policy: {e.Kind} cache: {e.Reason}");
        }
    }

    public void Dispose()
    {
        foreach (var s in _subscriptions)
        {
            s.Dispose();
        }

        _datapath?.Dispose();
        _signal.Dispose();
    }
}
