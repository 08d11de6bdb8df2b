using System.Net;
using System.Net.NetworkInformation;
using Loom.Linux.Interop;

namespace Loom.Linux;

/// <summary>
/// A bridge forwarding-database entry (AF_BRIDGE neighbour). On a vxlan device each (MAC, remote VTEP IP)
/// pair is one entry; the all-zero MAC with several destinations is head-end replication for BUM traffic.
/// </summary>
public sealed record FdbEntry(int Index, PhysicalAddress HardwareAddr)
{
    /// <summary>NDA_DST: the remote underlay address (vxlan); null for plain bridge ports.</summary>
    public IPAddress? Destination { get; init; }

    public NeighState State { get; init; }

    public NeighFlags Flags { get; init; }
}

public partial interface INetlink
{
    /// <summary>
    /// <c>bridge fdb append MAC dev DEV dst IP self permanent</c>: adds another remote for the MAC
    /// (NLM_F_CREATE|NLM_F_APPEND) instead of replacing the existing one.
    /// Kernel quirk: vxlan honours APPEND only for the all-zero (flood list) and multicast MACs; for a unicast
    /// MAC that already has a remote, a second append is silently ignored (iproute2 behaves the same).
    /// </summary>
    void FdbAppend(int index, PhysicalAddress mac, IPAddress destination);

    /// <summary>Deletes one (MAC, destination) entry, or all destinations of the MAC when destination is null.</summary>
    void FdbDel(int index, PhysicalAddress mac, IPAddress? destination = null);

    /// <summary>FDB entries of one device.</summary>
    IReadOnlyList<FdbEntry> FdbList(int index);
}

internal sealed partial class RtNetlink
{
    public void FdbAppend(int index, PhysicalAddress mac, IPAddress destination) =>
        FdbModify(Rtm.NEWNEIGH, Nl.F_CREATE | Nl.F_APPEND, index, mac, destination);

    public void FdbDel(int index, PhysicalAddress mac, IPAddress? destination = null) =>
        FdbModify(Rtm.DELNEIGH, 0, index, mac, destination);

    public IReadOnlyList<FdbEntry> FdbList(int index) =>
        DumpNeigh(Libc.AF_BRIDGE)
            .Where(e => e.Header.Family == Libc.AF_BRIDGE && e.Header.Index == index && e.Mac is not null)
            .Select(e => new FdbEntry(e.Header.Index, e.Mac!)
            {
                Destination = e.Dst,
                State = (NeighState)e.Header.State,
                Flags = (NeighFlags)e.Header.Flags,
            })
            .ToArray();

    private void FdbModify(ushort type, ushort flags, int index, PhysicalAddress mac, IPAddress? destination)
    {
        ArgumentNullException.ThrowIfNull(mac);
        var req = new NlRequest(type, flags);
        req.Header(new NdMsg
        {
            Family = Libc.AF_BRIDGE,
            Index = index,
            State = (ushort)NeighState.Permanent,
            Flags = (byte)NeighFlags.Self, // program the device's own table (vxlan), not a bridge master
        });
        req.Attr(Nda.LLADDR, mac.GetAddressBytes());
        if (destination is not null)
        {
            req.Ip(Nda.DST, destination);
        }

        _socket.Execute(req, $"{mac} dst {destination}");
    }
}
