using System.Globalization;
using System.Runtime.InteropServices;

namespace Loom.Linux.Interop;

// ctnetlink's ABI (include/uapi/linux/netfilter/nfnetlink.h, nfnetlink_conntrack.h).
internal static class Ctnl
{
    internal const int NETLINK_NETFILTER = 12;
    internal const byte NFNETLINK_V0 = 0;
    internal const int SUBSYS_CTNETLINK = 1;

    // Message types: (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_*.
    internal const ushort MSG_NEW = SUBSYS_CTNETLINK << 8, MSG_GET = (SUBSYS_CTNETLINK << 8) | 1, MSG_DELETE = (SUBSYS_CTNETLINK << 8) | 2;

    // enum ctattr_type
    internal const ushort TUPLE_ORIG = 1, TUPLE_REPLY = 2, STATUS = 3, TIMEOUT = 7, MARK = 8, ID = 12, ZONE = 18;

    // enum ctattr_tuple, ctattr_ip, ctattr_l4proto
    internal const ushort TUPLE_IP = 1, TUPLE_PROTO = 2;
    internal const ushort IP_V4_SRC = 1, IP_V4_DST = 2;
    internal const ushort PROTO_NUM = 1, PROTO_SRC_PORT = 2, PROTO_DST_PORT = 3;

    internal static string Name(ushort type) => type switch
    {
        MSG_NEW => "IPCTNL_MSG_CT_NEW",
        MSG_GET => "IPCTNL_MSG_CT_GET",
        MSG_DELETE => "IPCTNL_MSG_CT_DELETE",
        _ => string.Create(CultureInfo.InvariantCulture, $"NFNL_{type >> 8}_{type & 0xff}"),
    };
}

/// <summary>struct nfgenmsg, which opens every nfnetlink message: family, version, res_id (big endian; 0 here).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NfGenMsg
{
    public byte Family;
    public byte Version;
    public ushort ResId;
}
