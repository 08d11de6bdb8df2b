using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Loom.Linux.Interop;

namespace Loom.Linux;

/// <summary>NUD_* states.</summary>
[Flags]
public enum NeighState : ushort
{
    None = 0,
    Incomplete = 0x01,
    Reachable = 0x02,
    Stale = 0x04,
    Delay = 0x08,
    Probe = 0x10,
    Failed = 0x20,
    NoArp = 0x40,
    Permanent = 0x80,
}

/// <summary>NTF_* flags (ndm_flags).</summary>
[Flags]
[SuppressMessage("Naming", "CA1711", Justification = "Mirrors the kernel's ndm_flags; 'Flags' is the field's name.")]
public enum NeighFlags : byte
{
    None = 0,
    Use = 0x01,
    Self = 0x02,
    Master = 0x04,
    Proxy = 0x08,
    ExtLearned = 0x10,
    Offloaded = 0x20,
    Router = 0x80,
}

/// <summary>An ARP/NDP entry. Flannel installs permanent ones for remote VTEP addresses on the vxlan device.</summary>
public sealed record Neigh(int Index, IPAddress Ip, PhysicalAddress? HardwareAddr)
{
    public NeighState State { get; init; } = NeighState.Permanent;

    public NeighFlags Flags { get; init; }
}

public partial interface INetlink
{
    /// <summary>Adds an entry (NLM_F_CREATE|NLM_F_EXCL).</summary>
    void NeighAdd(Neigh neigh);

    /// <summary>Adds or replaces an entry (NLM_F_CREATE|NLM_F_REPLACE), like <c>ip neigh replace</c>.</summary>
    void NeighSet(Neigh neigh);

    void NeighDel(Neigh neigh);

    /// <summary>IPv4/IPv6 neighbour entries, optionally of one link (index 0 = all).</summary>
    IReadOnlyList<Neigh> NeighList(int index = 0, AddressFamily family = AddressFamily.Unspecified);
}

internal sealed partial class RtNetlink
{
    public void NeighAdd(Neigh neigh) => NeighModify(Rtm.NEWNEIGH, Nl.F_CREATE | Nl.F_EXCL, neigh);

    public void NeighSet(Neigh neigh) => NeighModify(Rtm.NEWNEIGH, Nl.F_CREATE | Nl.F_REPLACE, neigh);

    public void NeighDel(Neigh neigh) => NeighModify(Rtm.DELNEIGH, 0, neigh);

    public IReadOnlyList<Neigh> NeighList(int index = 0, AddressFamily family = AddressFamily.Unspecified)
    {
        var list = new List<Neigh>();
        foreach (var (hdr, dst, mac) in DumpNeigh(Family(family)))
        {
            // An AF_UNSPEC dump also walks the bridge FDB (AF_BRIDGE); those are FdbList's business.
            if (hdr.Family is Libc.AF_INET or Libc.AF_INET6 && dst is not null && (index == 0 || hdr.Index == index))
            {
                list.Add(new Neigh(hdr.Index, dst, mac) { State = (NeighState)hdr.State, Flags = (NeighFlags)hdr.Flags });
            }
        }

        return list;
    }

    private List<(NdMsg Header, IPAddress? Dst, PhysicalAddress? Mac)> DumpNeigh(byte family)
    {
        var req = new NlRequest(Rtm.GETNEIGH, Nl.F_DUMP);
        req.Header(new NdMsg { Family = family });
        var list = new List<(NdMsg, IPAddress?, PhysicalAddress?)>();
        foreach (var m in _socket.Dump(req))
        {
            if (m.Type != Rtm.NEWNEIGH)
            {
                continue;
            }

            list.Add(ParseNeigh(m.Payload));
        }

        return list;
    }

    /// <summary>One RTM_NEWNEIGH payload: its header, NDA_DST and NDA_LLADDR.</summary>
    internal static (NdMsg Header, IPAddress? Dst, PhysicalAddress? Mac) ParseNeigh(byte[] payload)
    {
        var hdr = NlAttrs.Header<NdMsg>(payload);
        IPAddress? dst = null;
        PhysicalAddress? mac = null;
        foreach (var a in new NlAttrs(payload.AsSpan(Marshal.SizeOf<NdMsg>())))
        {
            if (a.Type == Nda.DST)
            {
                dst = NlAttrs.Ip(a.Value);
            }
            else if (a.Type == Nda.LLADDR)
            {
                mac = NlAttrs.Mac(a.Value);
            }
        }

        return (hdr, dst, mac);
    }

    private void NeighModify(ushort type, ushort flags, Neigh neigh)
    {
        ArgumentNullException.ThrowIfNull(neigh);
        var req = new NlRequest(type, flags);
        req.Header(new NdMsg
        {
            Family = Family(neigh.Ip.AddressFamily),
            Index = neigh.Index,
            State = (ushort)neigh.State,
            Flags = (byte)neigh.Flags,
        });
        req.Ip(Nda.DST, neigh.Ip);
        if (neigh.HardwareAddr is { } mac)
        {
            req.Attr(Nda.LLADDR, mac.GetAddressBytes());
        }

        _socket.Execute(req, neigh.Ip.ToString());
    }
}
