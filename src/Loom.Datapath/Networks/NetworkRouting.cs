using System.Net;
using System.Net.Sockets;
using Loom.Linux;

namespace Loom.Datapath.Networks;

/// <summary>How a network reaches other nodes' pods (Cilium's <c>routingMode</c>).</summary>
public enum RoutingMode
{
    /// <summary>A VXLAN device of the network's own; per peer a route, a neighbour and an FDB entry.</summary>
    Tunnel,

    /// <summary>No device: <c>PEER_BLOCK via PEER_NODE_IP dev UNDERLAY</c> per peer (autoDirectNodeRoutes).</summary>
    Native,
}

/// <summary>A tunnel network's VXLAN device: flannel's is <c>loom.1</c>, port 8472, VNI 1.</summary>
public sealed record TunnelSettings(string Device, ushort Port, uint Vni);

/// <summary>
/// The routing of one network on this node: its pool (<c>podCIDR</c>), this node's block of it, the underlay it
/// crosses, and for <see cref="RoutingMode.Tunnel"/> its VXLAN device. One instance per network; a change of any
/// field is a new network (remove the old one's state first).
/// </summary>
public sealed record NetworkRouting(string Name, RoutingMode Mode, IPNetwork PodCidr, IPNetwork LocalBlock, int UnderlayIndex, IPAddress UnderlayIp)
{
    /// <summary>
    /// rtm_protocol of every route a network installs: unassigned in iproute2's rt_protos (76, 'L'), so a full pass
    /// can tell Loom's routes from the kernel's, DHCP's or a routing daemon's. Which network a route belongs to is
    /// its destination: pools never overlap, so a Loom route inside a network's pool is that network's.
    /// </summary>
    public const RouteProtocol Protocol = (RouteProtocol)76;

    /// <summary>Linux's IFNAMSIZ minus the terminating NUL.</summary>
    private const int MaxDeviceName = 15;

    public TunnelSettings? Tunnel { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first field that is wrong.</summary>
    public void Validate()
    {
        string? error = null;
        if (string.IsNullOrWhiteSpace(Name))
        {
            error = "name: empty";
        }
        else if (!IsV4(PodCidr.BaseAddress))
        {
            error = $"podCIDR {PodCidr}: not IPv4";
        }
        else if (!IsV4(LocalBlock.BaseAddress) || !Inside(LocalBlock))
        {
            error = $"localBlock {LocalBlock}: not inside podCIDR {PodCidr}";
        }
        else if (UnderlayIndex <= 0)
        {
            error = $"underlayIndex {UnderlayIndex}: not an interface index";
        }
        else if (UnderlayIp is null || !IsV4(UnderlayIp) || PodCidr.Contains(UnderlayIp))
        {
            error = $"underlayIp {UnderlayIp}: not an IPv4 address outside podCIDR {PodCidr}";
        }
        else
        {
            error = TunnelError();
        }

        if (error is not null)
        {
            throw new ArgumentException($"network {Name}: {error}");
        }
    }

    /// <summary>Why <paramref name="peer"/> cannot be routed on this network, or null.</summary>
    public string? PeerError(NetworkPeer peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        var p = $"network {Name}: peer {peer.Node}";
        if (string.IsNullOrWhiteSpace(peer.Node))
        {
            return $"network {Name}: peer with an empty node name";
        }

        if (peer.NodeIp is null || !IsV4(peer.NodeIp) || peer.NodeIp.Equals(UnderlayIp) || PodCidr.Contains(peer.NodeIp))
        {
            return $"{p}: node IP {peer.NodeIp} is not another node's IPv4 address outside podCIDR {PodCidr}";
        }

        if (!IsV4(peer.Block.BaseAddress) || !Inside(peer.Block) || peer.Block.PrefixLength != LocalBlock.PrefixLength)
        {
            return $"{p}: block {peer.Block} is not a /{LocalBlock.PrefixLength} of podCIDR {PodCidr}";
        }

        if (peer.Block.Equals(LocalBlock))
        {
            return $"{p}: block {peer.Block} is this node's own";
        }

        if (Mode == RoutingMode.Tunnel && (peer.VtepMac?.GetAddressBytes() is not { Length: 6 } mac || (mac[0] & 1) != 0 || mac.All(b => b == 0)))
        {
            return $"{p}: VTEP MAC {peer.VtepMac?.ToString() ?? "(none)"} is not a unicast Ethernet address";
        }

        return null;
    }

    /// <summary>Whether <paramref name="route"/> is one of this network's: Loom's protocol, destination inside the pool.</summary>
    public bool Owns(Route route)
    {
        ArgumentNullException.ThrowIfNull(route);
        return route.Protocol == Protocol && route.Table == Route.MainTable && Inside(route.Destination);
    }

    private string? TunnelError() => (Mode, Tunnel) switch
    {
        (RoutingMode.Native, null) => null,
        (RoutingMode.Native, _) => "tunnel: set on a native network",
        (RoutingMode.Tunnel, null) => "tunnel: missing on a tunnel network",
        (RoutingMode.Tunnel, { } t) when string.IsNullOrEmpty(t.Device) || t.Device.Length > MaxDeviceName
            || t.Device.Any(c => c is '/' or ':' || char.IsWhiteSpace(c)) || t.Device is "." or ".." =>
            $"tunnel.device \"{t.Device}\": not an interface name (1-{MaxDeviceName} characters, no '/', ':' or spaces)",
        (RoutingMode.Tunnel, { Port: 0 }) => "tunnel.port: 0",
        (RoutingMode.Tunnel, { } t) when t.Vni is 0 or >= 1 << 24 => $"tunnel.vni {t.Vni}: not in 1-16777215",
        (RoutingMode.Tunnel, _) => null,
        _ => $"routingMode {Mode}: unknown",
    };

    private bool Inside(IPNetwork block) =>
        block.PrefixLength >= PodCidr.PrefixLength && PodCidr.Contains(block.BaseAddress);

    private static bool IsV4(IPAddress ip) => ip.AddressFamily == AddressFamily.InterNetwork;
}
