using System.Net.Sockets;
using Loom.Core.Reconcile;
using Loom.Linux;

namespace Loom.Datapath.Networks;

/// <summary>
/// Writes one network's peers into the kernel, one reconciler row per peer node. A tunnel network owns its VXLAN
/// device and everything on it (flannel's per-peer route, neighbour and FDB entry, through <see cref="VxlanRoutes"/>'s
/// shapes); a native network owns the routes <c>PEER_BLOCK via PEER_NODE_IP dev UNDERLAY</c>. Every route is marked
/// with <see cref="NetworkRouting.Protocol"/>, so the full pass and <see cref="Remove"/> find this network's routes by
/// protocol and pool and never touch another's. Calls are serialised; the reconciler's one worker is the only caller.
/// </summary>
public sealed class NetworkRouteOperations : IReconcileOperations<string, NetworkPeer>
{
    private const int ENOENT = 2;
    private const int ESRCH = 3;
    private const int ENODEV = 19;

    private readonly INetlink _nl;
    private readonly Lock _gate = new();

    // What this process last wrote per peer: an update or delete must withdraw the old entries (an FDB entry under
    // an old MAC, a route to an old block) that the new value no longer names. After a restart it is empty and the
    // first full pass removes what the previous life left.
    private readonly Dictionary<string, NetworkPeer> _applied = new(StringComparer.Ordinal);

    // The tunnel device the applied peers were written on; a new one (deleted and re-created) starts empty.
    private int _deviceIndex;

    public NetworkRouteOperations(INetlink netlink, NetworkRouting routing)
    {
        ArgumentNullException.ThrowIfNull(netlink);
        ArgumentNullException.ThrowIfNull(routing);
        routing.Validate();
        _nl = netlink;
        Routing = routing;
    }

    public NetworkRouting Routing { get; }

    /// <summary>Creates or adopts the network's VXLAN device (its MAC is what peers need); null on a native network.</summary>
    public Link? EnsureDevice()
    {
        if (Routing.Tunnel is not { } t)
        {
            return null;
        }

        var underlay = _nl.LinkByIndex(Routing.UnderlayIndex)
            ?? throw new InvalidOperationException($"network {Routing.Name}: underlay ifindex {Routing.UnderlayIndex} does not exist");
        return VxlanDevice.Ensure(_nl, t.Device, t.Vni, t.Port, Routing.UnderlayIp, underlay, Routing.LocalBlock);
    }

    public Task UpdateAsync(string key, NetworkPeer value, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            Check(key, value);
            var dev = EnsureDevice();
            if (_applied.TryGetValue(key, out var old) && old != value)
            {
                Withdraw(key, old, dev, value);
            }

            Write(value, dev);
            _applied[key] = value;
            if (dev is not null && dev.Index != _deviceIndex)
            {
                // The device was re-created under the other rows: they are Done but their entries went with the old one.
                foreach (var other in _applied.Where(a => a.Key != key))
                {
                    Write(other.Value, dev);
                }

                _deviceIndex = dev.Index;
            }
        }

        return Task.CompletedTask;
    }

    public Task DeleteAsync(string key, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_applied.TryGetValue(key, out var old))
            {
                // No device means nothing of the peer's is on it: do not create one just to delete from it.
                Withdraw(key, old, Routing.Tunnel is { } t ? _nl.LinkByName(t.Device) : null, null);
                _applied.Remove(key);
            }
        }

        return Task.CompletedTask;
    }

    public Task<int> PruneAsync(IReadOnlyDictionary<string, NetworkPeer> desired, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(desired);
        lock (_gate)
        {
            foreach (var (key, peer) in desired)
            {
                Check(key, peer);
            }

            CheckDistinct(desired.Values);
            var drift = 0;
            Link? dev = null;
            if (Routing.Tunnel is { } t)
            {
                var before = _nl.LinkByName(t.Device);
                dev = EnsureDevice()!;
                _deviceIndex = dev.Index;
                drift += before is null || before.Index != dev.Index || !before.IsUp || before.Mtu != dev.Mtu ? 1 : 0;
                var changes = VxlanRoutes.Reconcile(_nl, dev, [.. desired.Values.Select(p => p.Vxlan)], NetworkRouting.Protocol);
                drift += changes.Added + changes.Removed;
            }

            // Loom routes in the pool off the device: a native network's own, or left by a past life in the other mode.
            var wanted = dev is null ? desired.Values.Select(NativeRoute).ToList() : [];
            var routes = _nl.RouteList(AddressFamily.InterNetwork).Where(r => Routing.Owns(r) && r.OutputIndex != dev?.Index).ToList();
            foreach (var r in routes.Where(r => !wanted.Any(w => Same(r, w)) && !(r.Priority == 0 && wanted.Any(w => w.Destination.Equals(r.Destination)))))
            {
                IgnoreMissing(() => _nl.RouteDel(r));
                drift++;
            }

            foreach (var w in wanted.Where(w => !routes.Any(r => Same(r, w))))
            {
                _nl.RouteReplace(w);
                drift++;
            }

            _applied.Clear();
            foreach (var (key, peer) in desired)
            {
                _applied[key] = peer;
            }

            return Task.FromResult(drift);
        }
    }

    /// <summary>
    /// Removes everything the network owns on this node: its device (the kernel drops the routes, neighbours and FDB
    /// entries on it) and every Loom route inside its pool. Returns how many objects it deleted. Run it only once the
    /// reconciler has stopped, or its next write brings the network back.
    /// </summary>
    public int Remove()
    {
        lock (_gate)
        {
            var removed = 0;
            if (Routing.Tunnel is { } t && _nl.LinkByName(t.Device) is { Kind: "vxlan" } dev)
            {
                _nl.LinkDel(dev.Index);
                removed++;
            }

            foreach (var r in _nl.RouteList(AddressFamily.InterNetwork).Where(Routing.Owns))
            {
                IgnoreMissing(() => _nl.RouteDel(r));
                removed++;
            }

            _applied.Clear();
            return removed;
        }
    }

    /// <summary>Throws <see cref="ArgumentException"/> if two peers share a block (blocks are one size, so overlap is equality).</summary>
    internal void CheckDistinct(IEnumerable<NetworkPeer> peers)
    {
        if (peers.GroupBy(p => p.Block).FirstOrDefault(g => g.Count() > 1) is { } dup)
        {
            throw new ArgumentException($"network {Routing.Name}: block {dup.Key} claimed by peers {string.Join(", ", dup.Select(p => p.Node))}");
        }
    }

    internal void Check(string key, NetworkPeer peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        if (Routing.PeerError(peer) is { } error)
        {
            throw new ArgumentException(error);
        }

        if (key != peer.Node)
        {
            throw new ArgumentException($"network {Routing.Name}: row {key} holds peer {peer.Node}");
        }
    }

    private void Write(NetworkPeer peer, Link? dev)
    {
        if (dev is null)
        {
            var route = NativeRoute(peer);
            if (!_nl.RouteList(AddressFamily.InterNetwork).Any(r => Same(r, route)))
            {
                _nl.RouteReplace(route);
            }

            return;
        }

        // FDB first: the neighbour and the route are useless until the MAC resolves to the peer's node.
        var v = peer.Vxlan;
        var fdb = _nl.FdbList(dev.Index).Where(e => v.VtepMac.Equals(e.HardwareAddr)).ToList();
        foreach (var stale in fdb.Where(e => !v.UnderlayIp.Equals(e.Destination)))
        {
            // vxlan ignores an append for a unicast MAC that has a remote already: the old remote must go first.
            IgnoreMissing(() => _nl.FdbDel(dev.Index, stale.HardwareAddr, stale.Destination));
        }

        if (!fdb.Any(e => v.UnderlayIp.Equals(e.Destination)))
        {
            _nl.FdbAppend(dev.Index, v.VtepMac, v.UnderlayIp);
        }

        if (!_nl.NeighList(dev.Index).Any(n => n.Ip.Equals(v.VtepIp) && v.VtepMac.Equals(n.HardwareAddr) && n.State.HasFlag(NeighState.Permanent)))
        {
            _nl.NeighSet(v.Neigh(dev.Index));
        }

        if (!_nl.RouteList(AddressFamily.InterNetwork).Any(r => v.Owns(r, dev.Index, NetworkRouting.Protocol)))
        {
            _nl.RouteReplace(v.Route(dev.Index, NetworkRouting.Protocol));
        }
    }

    /// <summary>
    /// Deletes what <paramref name="old"/> installed and neither <paramref name="next"/> (the same peer's new value)
    /// nor another peer still needs: a block that moved to another node keeps the route that node's row wrote.
    /// </summary>
    private void Withdraw(string key, NetworkPeer old, Link? dev, NetworkPeer? next)
    {
        var others = _applied.Where(a => a.Key != key).Select(a => a.Value).Append(next).OfType<NetworkPeer>().ToList();
        var blockKept = others.Any(p => p.Block.Equals(old.Block));
        if (dev is null)
        {
            if (!blockKept && Routing.Mode == RoutingMode.Native)
            {
                IgnoreMissing(() => _nl.RouteDel(NativeRoute(old)));
            }

            return;
        }

        var v = old.Vxlan;
        if (!blockKept)
        {
            IgnoreMissing(() => _nl.RouteDel(v.Route(dev.Index, NetworkRouting.Protocol)));
            IgnoreMissing(() => _nl.NeighDel(v.Neigh(dev.Index)));
        }

        if (!others.Any(p => v.VtepMac.Equals(p.VtepMac) && v.UnderlayIp.Equals(p.NodeIp)))
        {
            IgnoreMissing(() => _nl.FdbDel(dev.Index, v.VtepMac, v.UnderlayIp));
        }
    }

    private Route NativeRoute(NetworkPeer p) =>
        new(p.Block) { Gateway = p.NodeIp, OutputIndex = Routing.UnderlayIndex, Protocol = NetworkRouting.Protocol };

    private static bool Same(Route r, Route w) =>
        r.Destination.Equals(w.Destination) && Equals(r.Gateway, w.Gateway) && r.OutputIndex == w.OutputIndex && r.Protocol == w.Protocol
        && r.Priority == w.Priority && r.OnLink == w.OnLink && r.Table == w.Table;

    private static void IgnoreMissing(Action delete)
    {
        try
        {
            delete();
        }
        catch (NetlinkException e) when (e.Errno is ENOENT or ESRCH or ENODEV)
        {
            // Already gone: a delete is idempotent.
        }
    }
}
