using System.Globalization;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Loom.Linux;

namespace Loom.Testing.Fakes;

/// <summary>
/// A namespace's state as sorted, ip-like lines, read only through <see cref="INetlink"/>'s list calls: the same text
/// for <see cref="FakeNetlink"/> and a real namespace, so golden files and fake-versus-kernel comparisons agree.
/// Links are printed by name (not index, which differs when the kernel adds tunnel devices to new namespaces).
/// </summary>
public static class NetlinkDump
{
    /// <param name="family">Addresses, routes and neighbours of this family (IPv6 adds the kernel's link-local noise).</param>
    public static string Of(INetlink netlink, AddressFamily family = AddressFamily.InterNetwork)
    {
        ArgumentNullException.ThrowIfNull(netlink);
        var links = netlink.LinkList().ToDictionary(l => l.Index);
        string Name(int index) => links.TryGetValue(index, out var l) ? l.Name : $"if{index}";

        var lines = new List<string>();
        lines.AddRange(links.Values.Select(l => LinkLine(l, links)));
        lines.AddRange(netlink.AddrList(0, family).Select(a => $"addr {Name(a.Index)} {a.Ip}/{a.PrefixLength}"));
        lines.AddRange(netlink.RouteList(family).Select(r => RouteLine(r, Name)));
        lines.AddRange(netlink.NeighList(0, family).Select(n => $"neigh {n.Ip} dev {Name(n.Index)} lladdr {Mac(n.HardwareAddr)} {Lower(n.State)}"));
        foreach (var vxlan in links.Values.Where(l => l.Kind == "vxlan"))
        {
            lines.AddRange(netlink.FdbList(vxlan.Index).Select(f => $"fdb {Mac(f.HardwareAddr)} dev {vxlan.Name} dst {f.Destination} {Lower(f.State)}"));
        }

        return string.Concat(lines.Order(StringComparer.Ordinal).Select(l => l + "\n"));
    }

    public static string Mac(PhysicalAddress? mac) =>
        mac is null ? "none" : string.Join(":", mac.GetAddressBytes().Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));

    private static string LinkLine(Link l, Dictionary<int, Link> links)
    {
        var text = $"link {l.Name} {l.Kind ?? "device"} mtu {l.Mtu} {(l.IsUp ? "up" : "down")} mac {Mac(l.HardwareAddr)}";
        if (l.Kind == "veth" && l.LinkNetNsId is null && links.TryGetValue(l.ParentIndex, out var peer))
        {
            text += $" peer {peer.Name}";
        }

        if (l.Vxlan is { } v)
        {
            var dev = v.UnderlayIndex == 0 ? "none" : links.GetValueOrDefault(v.UnderlayIndex)?.Name ?? $"if{v.UnderlayIndex}";
            text += $" vni {v.Vni} port {v.Port} local {v.Local?.ToString() ?? "none"} dev {dev}{(v.Learning ? "" : " nolearning")}";
        }

        if (l.MasterIndex != 0)
        {
            text += $" master {links.GetValueOrDefault(l.MasterIndex)?.Name ?? $"if{l.MasterIndex}"}";
        }

        return (l.Flags & 0x100) != 0 ? text + " promisc" : text;
    }

    private static string RouteLine(Route r, Func<int, string> name)
    {
        var text = "route ";
        if (r.Table != Route.MainTable)
        {
            text += $"table {r.Table} ";
        }

        if (r.Type != RouteType.Unicast)
        {
            text += Lower(r.Type) + " ";
        }

        text += r.Destination.ToString();
        if (r.Gateway is not null)
        {
            text += $" via {r.Gateway}";
        }

        if (r.OutputIndex != 0)
        {
            text += $" dev {name(r.OutputIndex)}";
        }

        text += $" proto {Lower(r.Protocol)} scope {Lower(r.Scope.GetValueOrDefault())}";
        if (r.PreferredSource is not null)
        {
            text += $" src {r.PreferredSource}";
        }

        if (r.Priority != 0)
        {
            text += $" metric {r.Priority}";
        }

        return r.OnLink ? text + " onlink" : text;
    }

    private static string Lower<T>(T value)
        where T : struct, Enum => value.ToString().ToLowerInvariant();
}
