using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Loom.Linux.Interop;

namespace Loom.Linux;

/// <summary>An interface address (RTM_GETADDR). Host bits are kept, so this is not an IPNetwork.</summary>
public sealed record Addr(int Index, IPAddress Ip, int PrefixLength)
{
    public IPAddress? Broadcast { get; init; }

    public string? Label { get; init; }

    public RouteScope Scope { get; init; }

    /// <summary>Raw IFA_F_* flags (IFA_FLAGS when present, else ifa_flags).</summary>
    public uint Flags { get; init; }
}

public partial interface INetlink
{
    /// <summary>Adds an address (NLM_F_CREATE|NLM_F_EXCL). IPv4 gets the broadcast address computed, like <c>ip addr add ... brd +</c>.</summary>
    void AddrAdd(int index, IPAddress ip, int prefixLength);

    void AddrDel(int index, IPAddress ip, int prefixLength);

    /// <summary>Lists addresses, optionally only of one link (index 0 = all) and one family.</summary>
    IReadOnlyList<Addr> AddrList(int index = 0, AddressFamily family = AddressFamily.Unspecified);
}

internal sealed partial class RtNetlink
{
    public void AddrAdd(int index, IPAddress ip, int prefixLength)
    {
        var req = AddrRequest(Rtm.NEWADDR, Nl.F_CREATE | Nl.F_EXCL, index, ip, prefixLength);
        if (ip.AddressFamily == AddressFamily.InterNetwork && prefixLength < 31)
        {
            var host = ~0u >> prefixLength;
            var b = ip.GetAddressBytes();
            var v = ((uint)b[0] << 24 | (uint)b[1] << 16 | (uint)b[2] << 8 | b[3]) | host;
            req.Attr(Ifa.BROADCAST, [(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v]);
        }

        _socket.Execute(req, $"{ip}/{prefixLength}");
    }

    public void AddrDel(int index, IPAddress ip, int prefixLength) =>
        _socket.Execute(AddrRequest(Rtm.DELADDR, 0, index, ip, prefixLength), $"{ip}/{prefixLength}");

    public IReadOnlyList<Addr> AddrList(int index = 0, AddressFamily family = AddressFamily.Unspecified)
    {
        var req = new NlRequest(Rtm.GETADDR, Nl.F_DUMP);
        req.Header(new IfAddrMsg { Family = Family(family) });
        var list = new List<Addr>();
        foreach (var m in _socket.Dump(req))
        {
            if (m.Type != Rtm.NEWADDR)
            {
                continue;
            }

            if (ParseAddr(m.Payload) is { } addr && (index == 0 || addr.Index == index))
            {
                list.Add(addr);
            }
        }

        return list;
    }

    /// <summary>One RTM_NEWADDR payload; null when it names no address.</summary>
    internal static Addr? ParseAddr(byte[] payload)
    {
        var hdr = NlAttrs.Header<IfAddrMsg>(payload);
        IPAddress? local = null, address = null, broadcast = null;
        string? label = null;
        uint flags = hdr.Flags;
        foreach (var a in new NlAttrs(payload.AsSpan(Marshal.SizeOf<IfAddrMsg>())))
        {
            switch (a.Type)
            {
                case Ifa.LOCAL: local = NlAttrs.Ip(a.Value); break;
                case Ifa.ADDRESS: address = NlAttrs.Ip(a.Value); break;
                case Ifa.BROADCAST: broadcast = NlAttrs.Ip(a.Value); break;
                case Ifa.LABEL: label = NlAttrs.Str(a.Value); break;
                case Ifa.FLAGS: flags = NlAttrs.U32(a.Value); break;
                default: break;
            }
        }

        // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point links.
        return (local ?? address) is { } ip
            ? new Addr(hdr.Index, ip, hdr.PrefixLen) { Broadcast = broadcast, Label = label, Scope = (RouteScope)hdr.Scope, Flags = flags }
            : null;
    }

    internal static byte Family(AddressFamily family) => family switch
    {
        AddressFamily.InterNetwork => Libc.AF_INET,
        AddressFamily.InterNetworkV6 => Libc.AF_INET6,
        AddressFamily.Unspecified => Libc.AF_UNSPEC,
        _ => throw new ArgumentOutOfRangeException(nameof(family), family, "only IPv4/IPv6"),
    };

    private static NlRequest AddrRequest(ushort type, ushort flags, int index, IPAddress ip, int prefixLength)
    {
        ArgumentNullException.ThrowIfNull(ip);
        var max = ip.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        ArgumentOutOfRangeException.ThrowIfGreaterThan(prefixLength, max);
        ArgumentOutOfRangeException.ThrowIfNegative(prefixLength);
        var req = new NlRequest(type, flags);
        req.Header(new IfAddrMsg
        {
            Family = Family(ip.AddressFamily),
            PrefixLen = (byte)prefixLength,
            Scope = IPAddress.IsLoopback(ip) ? (byte)RouteScope.Host : (byte)RouteScope.Universe,
            Index = index,
        });
        req.Ip(Ifa.LOCAL, ip);
        req.Ip(Ifa.ADDRESS, ip);
        return req;
    }
}
