using Loom.Linux.Interop;

namespace Loom.Linux;

public partial interface INetlink
{
    /// <summary>
    /// Hairpin mode on a bridge port: frames may leave by the port they came in on, so a pod can reach itself
    /// through a Service that picks it as the backend.
    /// </summary>
    void LinkSetHairpin(int index, bool on);

    /// <summary>Promiscuous mode (IFF_PROMISC), as the reference bridge plugin's promiscMode sets on the bridge.</summary>
    void LinkSetPromisc(int index, bool on);
}

internal sealed partial class RtNetlink
{
    private const byte AF_BRIDGE = 7;
    private const ushort IFLA_PROTINFO = 12;
    private const ushort IFLA_BRPORT_MODE = 4;
    private const uint IFF_PROMISC = 0x100;

    // Bridge port options travel as IFLA_PROTINFO in an AF_BRIDGE RTM_SETLINK (what `bridge link set hairpin on` sends).
    public void LinkSetHairpin(int index, bool on)
    {
        var req = new NlRequest(Rtm.SETLINK, 0);
        req.Header(new IfInfoMsg { Family = AF_BRIDGE, Index = index });
        var nest = req.BeginNested(IFLA_PROTINFO);
        req.U8(IFLA_BRPORT_MODE, on ? (byte)1 : (byte)0);
        req.EndNested(nest);
        _socket.Execute(req, IndexSubject(index));
    }

    public void LinkSetPromisc(int index, bool on) => SetFlags(index, on ? IFF_PROMISC : 0, IFF_PROMISC);
}
