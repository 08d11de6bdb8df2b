using System.Net;
using System.Net.NetworkInformation;
using Loom.Linux;

namespace Loom.Datapath.Networks;

/// <summary>What this node needs to know of another to reach its pods over VXLAN: flannel's lease, in short.</summary>
public sealed record VxlanPeer(string Node, IPNetwork PodCidr, IPAddress UnderlayIp, PhysicalAddress VtepMac)
{
    /// <summary>The peer's VTEP address inside the overlay: its pod CIDR's network address (flannel's scheme).</summary>
    public IPAddress VtepIp => PodCidr.BaseAddress;

    /// <summary><c>PEER_CIDR via PEER_VTEP_IP dev DEVICE onlink</c>.</summary>
    public Route Route(int deviceIndex, RouteProtocol protocol) =>
        new(PodCidr) { Gateway = VtepIp, OutputIndex = deviceIndex, OnLink = true, Protocol = protocol };

    /// <summary>The permanent neighbour entry <c>PEER_VTEP_IP lladdr PEER_VTEP_MAC</c>.</summary>
    public Neigh Neigh(int deviceIndex) => new(deviceIndex, VtepIp, VtepMac);

    /// <summary>Whether <paramref name="route"/> is this peer's route as <see cref="Route"/> makes it.</summary>
    public bool Owns(Route route, int deviceIndex, RouteProtocol protocol) =>
        PodCidr.Equals(route.Destination) && VtepIp.Equals(route.Gateway) && route.OutputIndex == deviceIndex && route.OnLink
        && route.Protocol == protocol && route.Priority == 0 && route.Table == Linux.Route.MainTable;
}
