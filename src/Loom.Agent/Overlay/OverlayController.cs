using Loom.Datapath.Networks;
using Loom.Core.Controllers;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Linux;

namespace Loom.Agent.Overlay;

/// <summary>
/// Flannel's VXLAN overlay on this node: the tunnel device, and per peer node a route to its pod CIDR via its VTEP, a
/// permanent neighbour and an FDB entry. Peers come from the store's Node objects, backed by their pod-CIDR claims
/// (<see cref="PeerCheck"/>), so a node or a claim changing re-runs the pass. Nothing is flushed on start: a restarted
/// agent adopts what the kernel has and corrects only differences, so established flows never notice.
/// </summary>
internal sealed class OverlayController(NodeContext node, IStore store, AgentLoops loops) : IController, IDisposable
{
    private readonly SemaphoreSlim _signal = new(0);
    private readonly Lock _gate = new();
    private INetlink? _nl;
    private Link? _vxlan;
    private IReadOnlyList<VxlanPeer> _peers = [];
    private long _passes;
    private long _revision;
    private DateTimeOffset _lastPass;

    public string Name => "overlay";

    /// <summary>The tunnel device once it exists.</summary>
    public Link? Tunnel => _vxlan;

    public IReadOnlyList<VxlanPeer> Peers
    {
        get
        {
            lock (_gate)
            {
                return _peers;
            }
        }
    }

    public DateTimeOffset LastPass => _lastPass;

    public long Passes => Interlocked.Read(ref _passes);

    public async Task StartAsync(CancellationToken ct)
    {
        _nl ??= Netlink.Open();
        if (_vxlan is null)
        {
            var underlay = _nl.LinkByName(node.Config.Iface)
                           ?? throw new AgentStartException($"underlay interface {node.Config.Iface} does not exist (set --iface or \"iface\")");
            var t = node.Cluster.Tunnel;
            _vxlan = VxlanDevice.Ensure(_nl, t.Device, (uint)t.Vni, (ushort)t.Port, node.UnderlayIp, underlay, node.PodCidr);
            loops.Log($"tunnel {_vxlan.Name}: vni {t.Vni} port {t.Port} mtu {_vxlan.Mtu} vtep {MacAddress.Format(_vxlan.HardwareAddr)}");
        }

        _revision = await store.GetRevisionAsync(ct).ConfigureAwait(false);
        await ReconcileAsync(ct).ConfigureAwait(false);
    }

    public Task RunAsync(CancellationToken ct)
    {
        // Pod CIDR claims back the peers' routes (PeerCheck), so a claim's change is an overlay change too.
        var watch = loops.WatchAsync(null, _revision, e => (e.Kind == Kinds.Node.Name && e.Key != node.Name) || e.Kind == Kinds.PodCidr.Name, _signal, "node", ct);
        var loop = loops.RunOnSignalAsync(_signal, ReconcileAsync, "overlay reconcile", ct);
        return Task.WhenAll(watch, loop);
    }

    public ControllerStatus Describe() =>
        new(Name, _vxlan is not null && _lastPass > DateTimeOffset.UtcNow.AddMinutes(-2) && loops.LastError("overlay reconcile") is null,
            $"{_vxlan?.Name ?? "no tunnel"}, {Peers.Count} peer(s)", Passes, loops.LastError("overlay reconcile"));

    /// <summary>
    /// Desired peers are all other nodes that have a pod CIDR and a VTEP MAC, as far as the cluster config and the
    /// pod-CIDR claims back them; a node object that does not decode, or fails the check, gets no route.
    /// </summary>
    private async Task ReconcileAsync(CancellationToken ct)
    {
        var rejected = new List<Rejection>();
        var (nodes, _) = await store.ListValidAsync(Kinds.Node, AgentLoops.Malformed(Kinds.Node.Name, rejected), ct).ConfigureAwait(false);
        var (claims, _) = await store.ListValidAsync(Kinds.PodCidr, AgentLoops.Malformed(Kinds.PodCidr.Name, rejected), ct).ConfigureAwait(false);
        var peers = PeerCheck.Peers(node.Name, node.UnderlayIp, node.Cluster, nodes, claims.Select(c => c.Value), rejected);
        loops.Refused("overlay", rejected);

        var changes = VxlanRoutes.Reconcile(_nl!, _vxlan!, peers);
        AgentMetrics.OverlaySyncs.Inc();
        AgentMetrics.TunnelPeers.Set(peers.Count);
        lock (_gate)
        {
            _peers = peers;
        }

        Interlocked.Increment(ref _passes);
        _lastPass = DateTimeOffset.UtcNow;
        if (changes.Any)
        {
            loops.Log($"overlay: {peers.Count} peer(s) [{string.Join(", ", peers.Select(p => $"{p.Node} {p.PodCidr} via {p.UnderlayIp}"))}]: +{changes.Added} -{changes.Removed} kernel entries");
        }
    }

    public void Dispose()
    {
        _signal.Dispose();
        _nl?.Dispose();
    }
}
