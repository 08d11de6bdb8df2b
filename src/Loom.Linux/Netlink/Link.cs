using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Loom.Linux.Interop;

namespace Loom.Linux;

/// <summary>A network interface as reported by RTM_GETLINK.</summary>
public sealed record Link(int Index, string Name)
{
    public int Mtu { get; init; }

    public PhysicalAddress? HardwareAddr { get; init; }

    /// <summary>Raw IFF_* flags.</summary>
    public uint Flags { get; init; }

    public bool IsUp => (Flags & Ifla.IFF_UP) != 0;

    /// <summary>Index of the bridge (or bond) this link is enslaved to; 0 if none.</summary>
    public int MasterIndex { get; init; }

    /// <summary>IFLA_LINK: for veth the peer's ifindex (in <see cref="LinkNetNsId"/> if set). 0 if none.</summary>
    public int ParentIndex { get; init; }

    /// <summary>IFLA_LINK_NETNSID: set when <see cref="ParentIndex"/> lives in another namespace.</summary>
    public int? LinkNetNsId { get; init; }

    /// <summary>IFLA_INFO_KIND ("veth", "bridge", "vxlan", ...); null for physical/loopback devices.</summary>
    public string? Kind { get; init; }

    public VxlanInfo? Vxlan { get; init; }

    /// <summary>IFLA_IFALIAS (<c>ip link set ... alias</c>); null when unset.</summary>
    public string? Alias { get; init; }
}

/// <summary>VXLAN settings read back from IFLA_INFO_DATA.</summary>
public sealed record VxlanInfo(uint Vni, ushort Port, IPAddress? Local, int UnderlayIndex, bool Learning);

public partial interface INetlink
{
    /// <summary>Creates a link (NLM_F_CREATE|NLM_F_EXCL) and returns it as read back.</summary>
    Link LinkAdd(LinkSpec spec);

    void LinkDel(int index);

    Link? LinkByName(string name);

    Link? LinkByIndex(int index);

    IReadOnlyList<Link> LinkList();

    void LinkSetUp(int index);

    void LinkSetDown(int index);

    void LinkSetMtu(int index, int mtu);

    void LinkSetMaster(int index, int masterIndex);

    void LinkSetNoMaster(int index);

    void LinkSetHardwareAddr(int index, PhysicalAddress mac);

    /// <summary>Sets IFLA_IFALIAS, a free-text label the kernel keeps for its owner (at most 255 bytes).</summary>
    void LinkSetAlias(int index, string alias);

    /// <summary>Moves the link into another namespace. Its index may change there.</summary>
    void LinkSetNsFd(int index, NetNsHandle ns);
}

internal sealed partial class RtNetlink
{
    private const int ENODEV = 19;
    private const int IfAliasSize = 256; // IFALIASZ

    public Link LinkAdd(LinkSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var req = new NlRequest(Rtm.NEWLINK, Nl.F_CREATE | Nl.F_EXCL);
        req.Header(new IfInfoMsg { Family = Libc.AF_UNSPEC });
        LinkCommonAttrs(req, spec.Name, spec.Mtu, spec.HardwareAddr);

        var info = req.BeginNested(Ifla.LINKINFO);
        req.String(Ifla.INFO_KIND, spec.Kind);
        switch (spec)
        {
            case VethSpec veth:
                var data = req.BeginNested(Ifla.INFO_DATA);
                // VETH_INFO_PEER carries a whole ifinfomsg followed by the peer's IFLA_* attributes.
                var peer = req.BeginNested(Ifla.VETH_INFO_PEER);
                req.Header(new IfInfoMsg { Family = Libc.AF_UNSPEC });
                LinkCommonAttrs(req, veth.PeerName, veth.PeerMtu ?? veth.Mtu, veth.PeerHardwareAddr);
                if (veth.PeerNetNs is { } ns)
                {
                    req.U32(Ifla.NET_NS_FD, (uint)ns.Fd);
                }

                req.EndNested(peer);
                req.EndNested(data);
                break;
            case VxlanSpec vx:
                data = req.BeginNested(Ifla.INFO_DATA);
                req.U32(Ifla.VXLAN_ID, vx.Vni);
                if (vx.Local is { } local)
                {
                    req.Ip(local.AddressFamily == AddressFamily.InterNetworkV6 ? Ifla.VXLAN_LOCAL6 : Ifla.VXLAN_LOCAL, local);
                }

                if (vx.UnderlayIndex > 0)
                {
                    req.U32(Ifla.VXLAN_LINK, (uint)vx.UnderlayIndex);
                }

                req.Be16(Ifla.VXLAN_PORT, vx.Port); // network byte order, unlike every other integer here
                req.U8(Ifla.VXLAN_LEARNING, vx.Learning ? (byte)1 : (byte)0);
                req.EndNested(data);
                break;
            default:
                break;
        }

        req.EndNested(info);
        GC.KeepAlive((spec as VethSpec)?.PeerNetNs);
        _socket.Execute(req, spec.Name);
        return LinkByName(spec.Name) ?? throw new NetlinkException(ENODEV, "RTM_GETLINK", spec.Name, "link vanished after creation");
    }

    public void LinkDel(int index)
    {
        var req = new NlRequest(Rtm.DELLINK, 0);
        req.Header(new IfInfoMsg { Index = index });
        _socket.Execute(req, IndexSubject(index));
    }

    public Link? LinkByName(string name)
    {
        var req = new NlRequest(Rtm.GETLINK, 0);
        req.Header(new IfInfoMsg());
        req.String(Ifla.IFNAME, name);
        return GetLink(req, name);
    }

    public Link? LinkByIndex(int index)
    {
        var req = new NlRequest(Rtm.GETLINK, 0);
        req.Header(new IfInfoMsg { Index = index });
        return GetLink(req, IndexSubject(index));
    }

    public IReadOnlyList<Link> LinkList()
    {
        var req = new NlRequest(Rtm.GETLINK, Nl.F_DUMP);
        req.Header(new IfInfoMsg());
        return _socket.Dump(req).Where(m => m.Type == Rtm.NEWLINK).Select(m => ParseLink(m.Payload)).ToArray();
    }

    public void LinkSetUp(int index) => SetFlags(index, Ifla.IFF_UP, Ifla.IFF_UP);

    public void LinkSetDown(int index) => SetFlags(index, 0, Ifla.IFF_UP);

    public void LinkSetMtu(int index, int mtu) => SetLink(index, r => r.U32(Ifla.MTU, (uint)mtu));

    public void LinkSetMaster(int index, int masterIndex) => SetLink(index, r => r.U32(Ifla.MASTER, (uint)masterIndex));

    public void LinkSetNoMaster(int index) => SetLink(index, r => r.U32(Ifla.MASTER, 0));

    public void LinkSetHardwareAddr(int index, PhysicalAddress mac) =>
        SetLink(index, r => r.Attr(Ifla.ADDRESS, mac.GetAddressBytes()));

    public void LinkSetAlias(int index, string alias)
    {
        ArgumentNullException.ThrowIfNull(alias);
        if (System.Text.Encoding.UTF8.GetByteCount(alias) >= IfAliasSize)
        {
            throw new ArgumentException($"alias is {System.Text.Encoding.UTF8.GetByteCount(alias)} bytes; the kernel keeps at most {IfAliasSize - 1}", nameof(alias));
        }

        // Without a terminating NUL, as iproute2 sends it: the kernel takes the attribute's length as the string's.
        SetLink(index, r => r.Attr(Ifla.IFALIAS, System.Text.Encoding.UTF8.GetBytes(alias)));
    }

    public void LinkSetNsFd(int index, NetNsHandle ns)
    {
        ArgumentNullException.ThrowIfNull(ns);
        SetLink(index, r => r.U32(Ifla.NET_NS_FD, (uint)ns.Fd));
        GC.KeepAlive(ns);
    }

    internal static Link ParseLink(byte[] payload)
    {
        var hdr = NlAttrs.Header<IfInfoMsg>(payload);
        var link = new Link(hdr.Index, "") { Flags = hdr.Flags };
        foreach (var a in new NlAttrs(payload.AsSpan(Marshal.SizeOf<IfInfoMsg>())))
        {
            link = a.Type switch
            {
                Ifla.IFNAME => link with { Name = NlAttrs.Str(a.Value) },
                Ifla.MTU => link with { Mtu = (int)NlAttrs.U32(a.Value) },
                Ifla.ADDRESS => link with { HardwareAddr = NlAttrs.Mac(a.Value) },
                Ifla.MASTER => link with { MasterIndex = (int)NlAttrs.U32(a.Value) },
                Ifla.LINK => link with { ParentIndex = (int)NlAttrs.U32(a.Value) },
                Ifla.LINK_NETNSID => link with { LinkNetNsId = (int)NlAttrs.U32(a.Value) },
                Ifla.LINKINFO => ParseLinkInfo(link, a.Value),
                Ifla.IFALIAS => link with { Alias = NlAttrs.Str(a.Value) },
                _ => link,
            };
        }

        return link;
    }

    private static Link ParseLinkInfo(Link link, ReadOnlySpan<byte> info)
    {
        string? kind = null;
        ReadOnlySpan<byte> data = default;
        foreach (var a in new NlAttrs(info))
        {
            if (a.Type == Ifla.INFO_KIND)
            {
                kind = NlAttrs.Str(a.Value);
            }
            else if (a.Type == Ifla.INFO_DATA)
            {
                data = a.Value;
            }
        }

        link = link with { Kind = kind };
        if (kind == "vxlan")
        {
            var vx = new VxlanInfo(0, 0, null, 0, Learning: false);
            foreach (var a in new NlAttrs(data))
            {
                vx = a.Type switch
                {
                    Ifla.VXLAN_ID => vx with { Vni = NlAttrs.U32(a.Value) },
                    Ifla.VXLAN_PORT => vx with { Port = NlAttrs.Be16(a.Value) },
                    Ifla.VXLAN_LOCAL or Ifla.VXLAN_LOCAL6 => vx with { Local = NlAttrs.Ip(a.Value) },
                    Ifla.VXLAN_LINK => vx with { UnderlayIndex = (int)NlAttrs.U32(a.Value) },
                    Ifla.VXLAN_LEARNING => vx with { Learning = NlAttrs.U8(a.Value) != 0 },
                    _ => vx,
                };
            }

            link = link with { Vxlan = vx };
        }

        return link;
    }

    private static void LinkCommonAttrs(NlRequest req, string name, int? mtu, PhysicalAddress? mac)
    {
        req.String(Ifla.IFNAME, name);
        if (mtu is { } m)
        {
            req.U32(Ifla.MTU, (uint)m);
        }

        if (mac is not null)
        {
            req.Attr(Ifla.ADDRESS, mac.GetAddressBytes());
        }
    }

    private static string IndexSubject(int index) => string.Create(CultureInfo.InvariantCulture, $"ifindex {index}");

    private Link? GetLink(NlRequest req, string subject)
    {
        try
        {
            var reply = _socket.Execute(req, subject);
            return reply.Where(m => m.Type == Rtm.NEWLINK).Select(m => ParseLink(m.Payload)).FirstOrDefault();
        }
        catch (NetlinkException e) when (e.Errno == ENODEV)
        {
            return null;
        }
    }

    private void SetFlags(int index, uint flags, uint change)
    {
        var req = new NlRequest(Rtm.NEWLINK, 0);
        req.Header(new IfInfoMsg { Index = index, Flags = flags, Change = change });
        _socket.Execute(req, IndexSubject(index));
    }

    private void SetLink(int index, Action<NlRequest> attrs)
    {
        var req = new NlRequest(Rtm.NEWLINK, 0);
        req.Header(new IfInfoMsg { Index = index });
        attrs(req);
        _socket.Execute(req, IndexSubject(index));
    }
}
