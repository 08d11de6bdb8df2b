using System.Net;
using System.Net.NetworkInformation;
using Loom.Linux;

namespace Loom.Datapath.Networks;

/// <summary>
/// Makes the kernel's per-peer state on the VXLAN device equal the desired peers, as flannel's vxlan backend
/// does: a route <c>PEER_CIDR via PEER_VTEP_IP dev loom.1 onlink</c>, a permanent neighbour entry
/// <c>PEER_VTEP_IP lladdr PEER_VTEP_MAC</c>, and an FDB entry <c>PEER_VTEP_MAC dst PEER_UNDERLAY_IP</c>.
/// It compares before it changes: entries already right are not touched, so a resync never blips traffic.
/// Routes carry <c>protocol</c> (per-network routing marks them as Loom's; the agent's flannel path keeps boot).
/// </summary>
public static class VxlanRoutes
{
    public sealed record Changes(int Added, int Removed)
    {
        public bool Any => Added + Removed > 0;
    }

    public static Changes Reconcile(INetlink nl, Link device, IReadOnlyCollection<VxlanPeer> peers, RouteProtocol protocol = RouteProtocol.Boot)
    {
        var added = 0;
        var removed = 0;

        // FDB first: the neighbour entry and the route are useless until the MAC resolves to an underlay address.
        var fdb = nl.FdbList(device.Index).Where(e => e.Destination is not null && !IsZero(e.HardwareAddr)).ToList();
        foreach (var e in fdb.Where(e => !peers.Any(p => p.VtepMac.Equals(e.HardwareAddr) && p.UnderlayIp.Equals(e.Destination))))
        {
            nl.FdbDel(device.Index, e.HardwareAddr, e.Destination);
            removed++;
        }

        foreach (var p in peers.Where(p => !fdb.Any(e => p.VtepMac.Equals(e.HardwareAddr) && p.UnderlayIp.Equals(e.Destination))))
        {
            nl.FdbAppend(device.Index, p.VtepMac, p.UnderlayIp);
            added++;
        }

        var neigh = nl.NeighList(device.Index).Where(n => n.State.HasFlag(NeighState.Permanent)).ToList();
        foreach (var n in neigh.Where(n => !peers.Any(p => p.VtepIp.Equals(n.Ip) && p.VtepMac.Equals(n.HardwareAddr))))
        {
            nl.NeighDel(n);
            removed++;
        }

        foreach (var p in peers.Where(p => !neigh.Any(n => p.VtepIp.Equals(n.Ip) && p.VtepMac.Equals(n.HardwareAddr))))
        {
            nl.NeighSet(p.Neigh(device.Index));
            added++;
        }

        var routes = nl.RouteList(System.Net.Sockets.AddressFamily.InterNetwork).Where(r => r.OutputIndex == device.Index && r.Gateway is not null).ToList();

        // A route a replace will overwrite in place (same destination, metric 0) is not deleted first: no gap.
        foreach (var r in routes.Where(r => !peers.Any(p => p.Owns(r, device.Index, protocol)) && !(r.Priority == 0 && peers.Any(p => p.PodCidr.Equals(r.Destination)))))
        {
            nl.RouteDel(r);
            removed++;
        }

        foreach (var p in peers.Where(p => !routes.Any(r => p.Owns(r, device.Index, protocol))))
        {
            nl.RouteReplace(p.Route(device.Index, protocol));
            added++;
        }

        return new Changes(added, removed);
    }

    private static bool IsZero(PhysicalAddress mac) => mac.GetAddressBytes().All(b => b == 0);
}
