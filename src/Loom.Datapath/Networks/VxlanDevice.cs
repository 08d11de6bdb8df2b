using System.Net;
using Loom.Linux;

namespace Loom.Datapath.Networks;

/// <summary>
/// The node's VXLAN device (flannel's <c>flannel.1</c>, Loom's <c>loom.1</c>). An existing device with the right
/// VNI, port, local address and underlay is adopted as it is, so a restarted agent keeps its MAC and peers'
/// FDB entries stay valid; only a device of the wrong shape is replaced.
/// </summary>
public static class VxlanDevice
{
    /// <summary>VXLAN over IPv4 adds 50 bytes: outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14.</summary>
    public const int Overhead = 50;

    public static Link Ensure(INetlink nl, string name, uint vni, ushort port, IPAddress local, Link underlay, IPNetwork podCidr)
    {
        var mtu = underlay.Mtu - Overhead;
        var link = nl.LinkByName(name);
        if (link is not null && !Matches(link, vni, port, local, underlay.Index))
        {
            nl.LinkDel(link.Index);
            link = null;
        }

        link ??= nl.LinkAdd(new VxlanSpec(name, vni) { Port = port, Local = local, UnderlayIndex = underlay.Index, Learning = false, Mtu = mtu });
        if (link.Mtu != mtu)
        {
            nl.LinkSetMtu(link.Index, mtu);
        }

        // flannel puts the pod CIDR's network address on the device as a /32: the source of traffic the node
        // itself sends into the overlay, and the address peers route to as this node's VTEP.
        var vtepIp = podCidr.BaseAddress;
        var addrs = nl.AddrList(link.Index, vtepIp.AddressFamily);
        foreach (var stale in addrs.Where(a => !a.Ip.Equals(vtepIp)))
        {
            nl.AddrDel(link.Index, stale.Ip, stale.PrefixLength);
        }

        if (!addrs.Any(a => a.Ip.Equals(vtepIp)))
        {
            nl.AddrAdd(link.Index, vtepIp, 32);
        }

        if (!link.IsUp)
        {
            nl.LinkSetUp(link.Index);
        }

        return nl.LinkByIndex(link.Index) ?? link;
    }

    private static bool Matches(Link link, uint vni, ushort port, IPAddress local, int underlayIndex) =>
        link.Kind == "vxlan" && link.Vxlan is { } v && v.Vni == vni && v.Port == port && local.Equals(v.Local)
        && v.UnderlayIndex == underlayIndex && !v.Learning;
}
