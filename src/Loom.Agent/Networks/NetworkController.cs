using Loom.Core.Controllers;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Store;
using Loom.Linux;

namespace Loom.Agent.Networks;

/// <summary>
/// Every network of the cluster on this node, as Cilium's and Flannel's agents each run theirs, side by side: per
/// network a block of its pool, its tunnel device (tunnel routing) or nothing (native routing), the router IP on
/// <c>loom_host</c> (routed plumbing), and a reconciler of per-peer routes. A network added to the store appears here
/// live; one deleted disappears with what it owned. Also resolves the node's primary network (the one its new pods
/// join). Masquerade, host routing and the CNI config follow through <see cref="INodeNetworks"/>. Nothing is flushed
/// on start: a restarted agent adopts its devices and routes and corrects only differences.
/// Partial files: .Lifecycle (adding and removing one network), .Status (what <c>loom status</c> shows).
/// </summary>
internal sealed partial class NetworkController(NodeContext node, IStore store, AgentLoops loops) : IController, INodeNetworks, IDisposable
{
    private const string Loop = "networks";

    /// <summary>How long a tunnel device outlives its network's switch to another routing: peers switch within a watch event or two.</summary>
    internal static readonly TimeSpan RetiredGrace = TimeSpan.FromSeconds(10);

    private readonly List<RetiredDevice> _retired = [];
    private readonly SemaphoreSlim _signal = new(0);
    private readonly Dictionary<string, NetworkInstance> _networks = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _errors = new(StringComparer.Ordinal);
    private readonly List<Network> _releases = [];
    private INetlink? _nl;
    private int _underlayIndex;
    private long _revision;
    private long _passes;
    private bool _swept;
    private IReadOnlyList<NetworkOnNode> _current = [];
    private string? _primary;
    private ClusterConfig _cluster = node.Cluster;

    public string Name => "networks";

    public IReadOnlyList<NetworkOnNode> Current => Volatile.Read(ref _current);

    public string? Primary => Volatile.Read(ref _primary);

    public event Action? Changed;

    /// <summary>The cluster's default network as of the last pass (the one the node object's legacy fields mirror).</summary>
    public string DefaultNetwork => _cluster.DefaultNetwork;

    /// <summary>This node's entry of the default network: the node object's legacy <c>podCidrs</c> / <c>vtepMac</c>.</summary>
    public NodeNetwork? DefaultEntry => NodeEntries().GetValueOrDefault(DefaultNetwork);

    public async Task StartAsync(CancellationToken ct)
    {
        _nl ??= Netlink.Open();
        _underlayIndex = (_nl.LinkByName(node.Config.Iface)
                          ?? throw new AgentStartException($"underlay interface {node.Config.Iface} does not exist (set --iface or \"iface\")")).Index;
        _revision = await store.GetRevisionAsync(ct).ConfigureAwait(false);

        // Only the primary network must be ready to start: another network that fails is reported and retried by the
        // loop, and must not keep the node from registering (its lease would lapse and peers drop their routes to it).
        await PassAsync(ct).ConfigureAwait(false);
        if (Primary is { } p && !Current.Any(n => n.Name == p && n.Ready))
        {
            throw new InvalidOperationException($"primary network {p} is not ready on this node: {_errors.GetValueOrDefault(p) ?? "not in the store"}");
        }
    }

    public Task RunAsync(CancellationToken ct)
    {
        // Other nodes (peers, blocks, VTEPs), claims backing them, networks, NodeConfigs and the cluster's default
        // (the primary network), this node's own labels (NodeConfig selectors).
        var watch = loops.WatchAsync(null, _revision, e => e.Kind == Kinds.Node.Name || e.Kind == Kinds.PodCidr.Name || e.Kind == Kinds.Network.Name
            || e.Kind == Kinds.NodeConfig.Name || e.Kind == Kinds.ClusterConfig.Name, _signal, "network", ct);
        var loop = loops.RunOnSignalAsync(_signal, ReconcileAsync, Loop, ct);
        return Task.WhenAll(watch, loop);
    }

    /// <summary>
    /// One pass: networks added, changed or deleted in the store; every network's peers; the primary network. A
    /// network that cannot be set up (its pool exhausted, a device name taken) is reported and retried with the next
    /// pass; the others carry on.
    /// </summary>
    private async Task ReconcileAsync(CancellationToken ct)
    {
        await PassAsync(ct).ConfigureAwait(false);
        if (_errors.Count > 0)
        {
            throw new InvalidOperationException(string.Join("; ", _errors.Select(e => $"network {e.Key}: {e.Value}")));
        }
    }

    private async Task PassAsync(CancellationToken ct)
    {
        _errors.Clear(); // each pass says again what still fails
        var rejected = new List<Rejection>();
        _cluster = (await store.GetValidAsync(Kinds.ClusterConfig, "cluster", AgentLoops.Malformed(Kinds.ClusterConfig.Name, rejected), ct).ConfigureAwait(false))?.Value
                   ?? _cluster;
        var (stored, _) = await store.ListValidAsync(Kinds.Network, AgentLoops.Malformed(Kinds.Network.Name, rejected), ct).ConfigureAwait(false);

        // A network object that does not decode is not a deleted one: keep what runs under its name, sweep nothing.
        var undecoded = rejected.Where(r => r.Kind == Kinds.Network.Name).Select(r => r.Key).ToHashSet(StringComparer.Ordinal);
        List<Network> wanted = [.. stored.Select(s => s.Value)];
        if (!wanted.Any(n => n.Name == _cluster.DefaultNetwork) && !undecoded.Contains(_cluster.DefaultNetwork))
        {
            wanted.Add(FromCluster(_cluster)); // a store from before network objects: its one network is the cluster config's
        }

        await ApplyNetworksAsync(wanted, undecoded, ct).ConfigureAwait(false);
        if (!_swept && undecoded.Count == 0 && _errors.Count == 0)
        {
            await SweepAsync(wanted, ct).ConfigureAwait(false);
            _swept = true;
        }

        var (nodes, _) = await store.ListValidAsync(Kinds.Node, AgentLoops.Malformed(Kinds.Node.Name, rejected), ct).ConfigureAwait(false);
        var (claims, _) = await store.ListValidAsync(Kinds.PodCidr, AgentLoops.Malformed(Kinds.PodCidr.Name, rejected), ct).ConfigureAwait(false);
        foreach (var (name, inst) in _networks)
        {
            try
            {
                var peers = PeerCheck.Peers(node.Name, node.UnderlayIp, inst.Network, name == _cluster.DefaultNetwork, _cluster, wanted, nodes,
                    claims.Select(c => c.Value), rejected);
                inst.Routes.SetPeers(peers);
                if (!inst.Synced)
                {
                    // The peer list is complete (the store was just listed): clear what a previous life left, then it is ready.
                    await inst.Routes.Reconciler.FullPassAsync(ct).ConfigureAwait(false);
                    inst.Synced = true;
                    loops.Log($"network {name}: ready, {peers.Count} peer(s) [{string.Join(", ", peers.Select(p => $"{p.Node} {p.Block} via {p.NodeIp}"))}]");
                }
            }
            catch (Exception e) when (!ct.IsCancellationRequested && e is not OutOfMemoryException)
            {
                _errors[name] = e.Message; // this network's peers wait for the next pass; the others carry on
            }
        }

        loops.Refused("networks", rejected);
        var self = nodes.FirstOrDefault(n => n.Key == node.Name)?.Value;
        var (configs, _) = await store.ListValidAsync(Kinds.NodeConfig, (_, _) => { }, ct).ConfigureAwait(false);
        var primary = PrimaryNetwork.Resolve(node.Name, self?.Labels ?? new Dictionary<string, string>(), configs.Select(c => c.Value), _cluster);
        Interlocked.Increment(ref _passes);
        AgentMetrics.NetworkPasses.Inc();
        AgentMetrics.NetworkPeers.Set(_networks.Values.Sum(n => n.Routes.Reconciler.Desired.Count));
        Publish(primary);
    }

    /// <summary>Replaces the published view and raises <see cref="Changed"/> if it differs from the last one.</summary>
    private void Publish(string primary)
    {
        var next = _networks.Values.OrderBy(n => n.Network.Name, StringComparer.Ordinal)
            .Select(n => new NetworkOnNode(n.Network, n.Block) { Ready = n.Synced && (n.Network.RoutingMode != RoutingMode.Tunnel || n.RefreshDevice() is not null) })
            .ToList();
        var changed = primary != _primary || !next.SequenceEqual(_current);
        TakeViews(next);
        Volatile.Write(ref _current, next);
        Volatile.Write(ref _primary, primary);
        if (changed)
        {
            Changed?.Invoke();
        }
    }

    /// <summary>A store without network objects (written by an older `lab up` or by hand): its one network from the cluster config.</summary>
    internal static Network FromCluster(ClusterConfig c) => new()
    {
        Name = c.DefaultNetwork,
        PodCidr = c.PodCidrPools[0],
        NodeMaskSize = c.NodeMaskSize,
        RoutingMode = c.Routing,
        Tunnel = c.Routing == RoutingMode.Tunnel ? c.Tunnel : null,
        AutoDirectNodeRoutes = c.Routing == RoutingMode.Native,
        Masquerade = c.IpMasq ? Masquerade.Iptables : Masquerade.None,
    };

    public ControllerStatus Describe()
    {
        var current = Current;
        var error = loops.LastError(Loop);
        return new ControllerStatus(Name, error is null && current.Count > 0 && current.All(n => n.Ready),
            $"{string.Join(", ", current.Select(n => $"{n.Name} {n.Block}{(n.Ready ? "" : " (not ready)")}"))}; primary {Primary ?? "none"}",
            Interlocked.Read(ref _passes), error);
    }

    /// <summary>A tunnel device whose network switched routing, kept until <paramref name="Until"/> (by name and index: a new one of the name is not it).</summary>
    private sealed record RetiredDevice(string Name, int Index, DateTimeOffset Until);

    public void Dispose()
    {
        foreach (var n in _networks.Values)
        {
            n.Dispose();
        }

        _signal.Dispose();
        _nl?.Dispose();
    }
}
