using System.Runtime.InteropServices;

namespace Loom.Linux.Interop;

// Kernel ABI constants and fixed headers (include/uapi/linux/{netlink,rtnetlink,if_link,neighbour}.h).
internal static class Nl
{
    internal const ushort NLMSG_NOOP = 1, NLMSG_ERROR = 2, NLMSG_DONE = 3, NLMSG_OVERRUN = 4;

    internal const ushort F_REQUEST = 0x1, F_MULTI = 0x2, F_ACK = 0x4, F_DUMP_INTR = 0x10;
    internal const ushort F_DUMP = 0x300;
    internal const ushort F_REPLACE = 0x100, F_EXCL = 0x200, F_CREATE = 0x400, F_APPEND = 0x800;
    // Flags on NLMSG_ERROR acks.
    internal const ushort F_CAPPED = 0x100, F_ACK_TLVS = 0x200;

    internal const ushort NLMSGERR_ATTR_MSG = 1;
    internal const ushort NLA_TYPE_MASK = 0x3fff; // strips NLA_F_NESTED / NLA_F_NET_BYTEORDER
    internal const ushort NLA_F_NESTED = 0x8000;

    internal const int HeaderSize = 16;
}

internal static class Rtm
{
    internal const ushort NEWLINK = 16, DELLINK = 17, GETLINK = 18, SETLINK = 19;
    internal const ushort NEWADDR = 20, DELADDR = 21, GETADDR = 22;
    internal const ushort NEWROUTE = 24, DELROUTE = 25, GETROUTE = 26;
    internal const ushort NEWNEIGH = 28, DELNEIGH = 29, GETNEIGH = 30;

    internal static string Name(ushort type) => type switch
    {
        NEWLINK => "RTM_NEWLINK", DELLINK => "RTM_DELLINK", GETLINK => "RTM_GETLINK", SETLINK => "RTM_SETLINK",
        NEWADDR => "RTM_NEWADDR", DELADDR => "RTM_DELADDR", GETADDR => "RTM_GETADDR",
        NEWROUTE => "RTM_NEWROUTE", DELROUTE => "RTM_DELROUTE", GETROUTE => "RTM_GETROUTE",
        NEWNEIGH => "RTM_NEWNEIGH", DELNEIGH => "RTM_DELNEIGH", GETNEIGH => "RTM_GETNEIGH",
        // nfnetlink types are (subsystem << 8) | message, above every rtnetlink type: errors on both sockets are named here.
        >= 0x100 => Ctnl.Name(type),
        _ => $"RTM_{type}",
    };
}

internal static class Ifla
{
    internal const ushort ADDRESS = 1, BROADCAST = 2, IFNAME = 3, MTU = 4, LINK = 5, MASTER = 10;
    internal const ushort IFALIAS = 20, LINKINFO = 18, NET_NS_FD = 28, LINK_NETNSID = 37;
    internal const ushort INFO_KIND = 1, INFO_DATA = 2;
    internal const ushort VETH_INFO_PEER = 1;
    internal const ushort VXLAN_ID = 1, VXLAN_LINK = 3, VXLAN_LOCAL = 4, VXLAN_LEARNING = 7, VXLAN_PORT = 15, VXLAN_LOCAL6 = 17;
    internal const uint IFF_UP = 0x1;
}

internal static class Ifa
{
    internal const ushort ADDRESS = 1, LOCAL = 2, LABEL = 3, BROADCAST = 4, FLAGS = 8;
}

internal static class Rta
{
    internal const ushort DST = 1, OIF = 4, GATEWAY = 5, PRIORITY = 6, PREFSRC = 7, TABLE = 15;
    internal const uint RTNH_F_ONLINK = 4;
    internal const uint RTM_F_CLONED = 0x200;
}

internal static class Nda
{
    internal const ushort DST = 1, LLADDR = 2, MASTER = 9;
}

[StructLayout(LayoutKind.Sequential)]
internal struct NlMsgHdr
{
    public uint Len;
    public ushort Type;
    public ushort Flags;
    public uint Seq;
    public uint Pid;
}

[StructLayout(LayoutKind.Sequential)]
internal struct IfInfoMsg
{
    public byte Family;
    public byte Pad;
    public ushort Type;
    public int Index;
    public uint Flags;
    public uint Change;
}

[StructLayout(LayoutKind.Sequential)]
internal struct IfAddrMsg
{
    public byte Family;
    public byte PrefixLen;
    public byte Flags;
    public byte Scope;
    public int Index;
}

[StructLayout(LayoutKind.Sequential)]
internal struct RtMsg
{
    public byte Family;
    public byte DstLen;
    public byte SrcLen;
    public byte Tos;
    public byte Table;
    public byte Protocol;
    public byte Scope;
    public byte Type;
    public uint Flags;
}

[StructLayout(LayoutKind.Sequential)]
internal struct NdMsg
{
    public byte Family;
    public byte Pad1;
    public ushort Pad2;
    public int Index;
    public ushort State;
    public byte Flags;
    public byte Type;
}
