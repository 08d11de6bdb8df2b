using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Loom.Linux.Interop;

namespace Loom.Linux;

public enum RouteScope : byte
{
    Universe = 0,
    Site = 200,
    Link = 253,
    Host = 254,
    Nowhere = 255,
}

/// <summary>rtm_protocol: who installed the route. Values above Static are routing daemons.</summary>
public enum RouteProtocol : byte
{
    Unspecified = 0,
    Redirect = 1,
    Kernel = 2,
    Boot = 3,
    Static = 4,
}

public enum RouteType : byte
{
    Unspecified = 0,
    Unicast = 1,
    Local = 2,
    Broadcast = 3,
    Anycast = 4,
    Multicast = 5,
    Blackhole = 6,
    Unreachable = 7,
    Prohibit = 8,
}

/// <summary>A route. The family follows <see cref="Destination"/>; the default route is 0.0.0.0/0 (or ::/0).</summary>
public sealed record Route(IPNetwork Destination)
{
    public const uint MainTable = 254;

    public IPAddress? Gateway { get; init; }

    /// <summary>Output device index (RTA_OIF); 0 = let the kernel pick from the gateway.</summary>
    public int OutputIndex { get; init; }

    /// <summary>RTNH_F_ONLINK: treat the gateway as directly reachable on <see cref="OutputIndex"/> (flannel's vxlan routes).</summary>
    public bool OnLink { get; init; }

    /// <summary>Null on add means what <c>ip route</c> picks: link scope without a gateway, universe with one.</summary>
    public RouteScope? Scope { get; init; }

    public IPAddress? PreferredSource { get; init; }

    /// <summary>Metric (RTA_PRIORITY).</summary>
    public uint Priority { get; init; }

    public uint Table { get; init; } = MainTable;

    public RouteProtocol Protocol { get; init; } = RouteProtocol.Boot;

    public RouteType Type { get; init; } = RouteType.Unicast;
}

public partial interface INetlink
{
    /// <summary>Adds a route (NLM_F_CREATE|NLM_F_EXCL, EEXIST if present).</summary>
    void RouteAdd(Route route);

    /// <summary>Adds or replaces a route (NLM_F_CREATE|NLM_F_REPLACE), like <c>ip route replace</c>.</summary>
    void RouteReplace(Route route);

    /// <summary>Deletes the route matching destination, table and any other fields that are set.</summary>
    void RouteDel(Route route);

    /// <summary>Lists routes of one table (0 = all tables), optionally one family.</summary>
    IReadOnlyList<Route> RouteList(AddressFamily family = AddressFamily.Unspecified, uint table = Route.MainTable);
}

internal sealed partial class RtNetlink
{
    private const byte RT_TABLE_UNSPEC = 0;

    public void RouteAdd(Route route) => RouteModify(Rtm.NEWROUTE, Nl.F_CREATE | Nl.F_EXCL, route);

    public void RouteReplace(Route route) => RouteModify(Rtm.NEWROUTE, Nl.F_CREATE | Nl.F_REPLACE, route);

    public void RouteDel(Route route) => RouteModify(Rtm.DELROUTE, 0, route);

    public IReadOnlyList<Route> RouteList(AddressFamily family = AddressFamily.Unspecified, uint table = Route.MainTable)
    {
        var req = new NlRequest(Rtm.GETROUTE, Nl.F_DUMP);
        req.Header(new RtMsg { Family = Family(family) });
        var list = new List<Route>();
        foreach (var m in _socket.Dump(req))
        {
            if (m.Type == Rtm.NEWROUTE && ParseRoute(m.Payload) is { } r && (table == 0 || r.Table == table))
            {
                list.Add(r);
            }
        }

        return list;
    }

    internal static Route? ParseRoute(byte[] payload)
    {
        var hdr = NlAttrs.Header<RtMsg>(payload);
        if ((hdr.Flags & Rta.RTM_F_CLONED) != 0 || hdr.Family is not (Libc.AF_INET or Libc.AF_INET6))
        {
            return null;
        }

        var dst = hdr.Family == Libc.AF_INET ? IPAddress.Any : IPAddress.IPv6Any;
        var route = new Route(default)
        {
            Table = hdr.Table,
            Protocol = (RouteProtocol)hdr.Protocol,
            Scope = (RouteScope)hdr.Scope,
            Type = (RouteType)hdr.Type,
            OnLink = (hdr.Flags & Rta.RTNH_F_ONLINK) != 0,
        };
        foreach (var a in new NlAttrs(payload.AsSpan(Marshal.SizeOf<RtMsg>())))
        {
            switch (a.Type)
            {
                case Rta.DST: dst = NlAttrs.Ip(a.Value); break;
                case Rta.GATEWAY: route = route with { Gateway = NlAttrs.Ip(a.Value) }; break;
                case Rta.OIF: route = route with { OutputIndex = (int)NlAttrs.U32(a.Value) }; break;
                case Rta.PRIORITY: route = route with { Priority = NlAttrs.U32(a.Value) }; break;
                case Rta.PREFSRC: route = route with { PreferredSource = NlAttrs.Ip(a.Value) }; break;
                case Rta.TABLE: route = route with { Table = NlAttrs.U32(a.Value) }; break;
                default: break;
            }
        }

        if (hdr.DstLen > dst.GetAddressBytes().Length * 8)
        {
            throw NlAttrs.Malformed($"route prefix /{hdr.DstLen} on {dst}");
        }

        return route with { Destination = new IPNetwork(dst, hdr.DstLen) };
    }

    private void RouteModify(ushort type, ushort flags, Route route)
    {
        ArgumentNullException.ThrowIfNull(route);
        var dst = route.Destination;
        var del = type == Rtm.DELROUTE;
        var hdr = new RtMsg
        {
            Family = Family(dst.BaseAddress.AddressFamily),
            DstLen = (byte)dst.PrefixLength,
            Table = route.Table < 256 ? (byte)route.Table : RT_TABLE_UNSPEC,
            // iproute2: deletes use scope NOWHERE / protocol and type unspecified so they match any.
            Protocol = del ? (byte)0 : (byte)route.Protocol,
            Type = del ? (byte)0 : (byte)route.Type,
            Scope = (byte)(route.Scope ?? (del ? RouteScope.Nowhere
                : route.Gateway is null && route.Type == RouteType.Unicast ? RouteScope.Link : RouteScope.Universe)),
            Flags = route.OnLink ? Rta.RTNH_F_ONLINK : 0,
        };
        var req = new NlRequest(type, flags);
        req.Header(hdr);
        if (dst.PrefixLength > 0)
        {
            req.Ip(Rta.DST, dst.BaseAddress);
        }

        if (route.Gateway is { } gw)
        {
            req.Ip(Rta.GATEWAY, gw);
        }

        if (route.OutputIndex > 0)
        {
            req.U32(Rta.OIF, (uint)route.OutputIndex);
        }

        if (route.PreferredSource is { } src)
        {
            req.Ip(Rta.PREFSRC, src);
        }

        if (route.Priority > 0)
        {
            req.U32(Rta.PRIORITY, route.Priority);
        }

        req.U32(Rta.TABLE, route.Table); // tables >= 256 only fit here
        _socket.Execute(req, dst.ToString());
    }
}
