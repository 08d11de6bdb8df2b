using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Loom.Linux.Interop;

namespace Loom.Linux;

/// <summary>IPS_* bits of a conntrack entry's status (include/uapi/linux/netfilter/nf_conntrack_common.h).</summary>
[Flags]
public enum ConntrackStatus : uint
{
    None = 0,
    Expected = 1 << 0,
    SeenReply = 1 << 1,
    Assured = 1 << 2,
    Confirmed = 1 << 3,
    SrcNat = 1 << 4,
    DstNat = 1 << 5,
    SrcNatDone = 1 << 7,
    DstNatDone = 1 << 8,
    Dying = 1 << 9,
}

/// <summary>One direction of a connection: addresses, protocol and ports (0 for protocols without ports, e.g. ICMP).</summary>
public sealed record ConntrackTuple(IPAddress Source, IPAddress Destination, ProtocolType Protocol, int SourcePort, int DestinationPort)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Protocol.ToString().ToLowerInvariant()} {Source}:{SourcePort} -> {Destination}:{DestinationPort}");
}

/// <summary>
/// A conntrack entry: the original direction and the reply the kernel expects. After a DNAT the reply's source is the
/// backend, which is how kube-proxy tells which endpoint a flow was sent to.
/// </summary>
public sealed record ConntrackFlow(ConntrackTuple Original, ConntrackTuple Reply)
{
    public ConntrackStatus Status { get; init; }

    /// <summary>Seconds left before the entry expires.</summary>
    public uint TimeoutSeconds { get; init; }

    public uint Mark { get; init; }

    public ushort Zone { get; init; }
}

/// <summary>
/// The kernel's connection tracking table through ctnetlink (NETLINK_NETFILTER), IPv4 only, as kube-proxy uses it:
/// a dump filtered in user space, then a delete per entry by its original tuple. Acts on the network namespace the
/// socket was opened in.
/// </summary>
public interface IConntrack : IDisposable
{
    /// <summary>Every IPv4 entry (IPCTNL_MSG_CT_GET dump).</summary>
    IReadOnlyList<ConntrackFlow> List();

    /// <summary>
    /// Deletes the entry whose original tuple is <paramref name="original"/> (IPCTNL_MSG_CT_DELETE); throws
    /// NetlinkException with errno ENOENT when there is none (e.g. it expired since the dump).
    /// </summary>
    void Delete(ConntrackTuple original, ushort zone = 0);
}

public static class Conntrack
{
    /// <summary>Opens a client acting on the calling thread's network namespace.</summary>
    public static IConntrack Open() => new CtNetlink(NetlinkSocket.Open(Ctnl.NETLINK_NETFILTER));

    /// <summary>Opens a client acting on <paramref name="ns"/>: the socket is created on a thread inside it.</summary>
    public static IConntrack OpenIn(NetNsHandle ns) => NetNs.Run(ns, Open);
}

internal sealed class CtNetlink(NetlinkSocket socket) : IConntrack
{
    private readonly NetlinkSocket _socket = socket;

    public IReadOnlyList<ConntrackFlow> List()
    {
        var req = new NlRequest(Ctnl.MSG_GET, Nl.F_DUMP);
        req.Header(new NfGenMsg { Family = Libc.AF_INET, Version = Ctnl.NFNETLINK_V0 });
        var list = new List<ConntrackFlow>();
        foreach (var m in _socket.Dump(req, "conntrack table"))
        {
            // Older kernels dump every family whatever the request's: keep the IPv4 entries.
            if (m.Type == Ctnl.MSG_NEW && ParseFlow(m.Payload) is { } flow)
            {
                list.Add(flow);
            }
        }

        return list;
    }

    public void Delete(ConntrackTuple original, ushort zone = 0)
    {
        ArgumentNullException.ThrowIfNull(original);
        if (original.Source.AddressFamily != AddressFamily.InterNetwork || original.Destination.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new ArgumentException($"conntrack delete: {original} is not an IPv4 tuple", nameof(original));
        }

        if (original.Protocol is not (ProtocolType.Udp or ProtocolType.Tcp) || original.SourcePort is < 0 or > 65535 || original.DestinationPort is < 0 or > 65535)
        {
            throw new ArgumentException($"conntrack delete: {original} is not a TCP or UDP tuple with ports 0-65535", nameof(original));
        }

        var req = new NlRequest(Ctnl.MSG_DELETE, 0);
        req.Header(new NfGenMsg { Family = Libc.AF_INET, Version = Ctnl.NFNETLINK_V0 });
        var tuple = req.BeginNested(Ctnl.TUPLE_ORIG);
        var ip = req.BeginNested(Ctnl.TUPLE_IP);
        req.Ip(Ctnl.IP_V4_SRC, original.Source);
        req.Ip(Ctnl.IP_V4_DST, original.Destination);
        req.EndNested(ip);
        var proto = req.BeginNested(Ctnl.TUPLE_PROTO);
        req.U8(Ctnl.PROTO_NUM, (byte)original.Protocol);
        req.Be16(Ctnl.PROTO_SRC_PORT, (ushort)original.SourcePort);
        req.Be16(Ctnl.PROTO_DST_PORT, (ushort)original.DestinationPort);
        req.EndNested(proto);
        req.EndNested(tuple);
        if (zone != 0)
        {
            req.Be16(Ctnl.ZONE, zone);
        }

        _socket.Execute(req, original.ToString());
    }

    public void Dispose() => _socket.Dispose();

    /// <summary>One IPCTNL_MSG_CT_NEW payload (nfgenmsg, then attributes); null when it is not an IPv4 entry.</summary>
    internal static ConntrackFlow? ParseFlow(byte[] payload)
    {
        var hdr = NlAttrs.Header<NfGenMsg>(payload);
        if (hdr.Family != Libc.AF_INET)
        {
            return null;
        }

        ConntrackTuple? orig = null, reply = null;
        uint status = 0, timeout = 0, mark = 0;
        ushort zone = 0;
        foreach (var a in new NlAttrs(payload.AsSpan(4)))
        {
            switch (a.Type)
            {
                case Ctnl.TUPLE_ORIG:
                    orig = ParseTuple(a.Value, "original");
                    break;
                case Ctnl.TUPLE_REPLY:
                    reply = ParseTuple(a.Value, "reply");
                    break;
                case Ctnl.STATUS:
                    status = Be32(a.Value, "CTA_STATUS");
                    break;
                case Ctnl.TIMEOUT:
                    timeout = Be32(a.Value, "CTA_TIMEOUT");
                    break;
                case Ctnl.MARK:
                    mark = Be32(a.Value, "CTA_MARK");
                    break;
                case Ctnl.ZONE:
                    zone = NlAttrs.Be16(a.Value);
                    break;
            }
        }

        if (orig is null || reply is null)
        {
            throw NlAttrs.Malformed($"a conntrack entry lacks its {(orig is null ? "original" : "reply")} tuple");
        }

        return new ConntrackFlow(orig, reply) { Status = (ConntrackStatus)status, TimeoutSeconds = timeout, Mark = mark, Zone = zone };
    }

    private static ConntrackTuple ParseTuple(ReadOnlySpan<byte> value, string direction)
    {
        IPAddress? src = null, dst = null;
        byte proto = 0;
        ushort sport = 0, dport = 0;
        foreach (var a in new NlAttrs(value))
        {
            if (a.Type == Ctnl.TUPLE_IP)
            {
                foreach (var i in new NlAttrs(a.Value))
                {
                    if (i.Type == Ctnl.IP_V4_SRC)
                    {
                        src = NlAttrs.Ip(i.Value);
                    }
                    else if (i.Type == Ctnl.IP_V4_DST)
                    {
                        dst = NlAttrs.Ip(i.Value);
                    }
                }
            }
            else if (a.Type == Ctnl.TUPLE_PROTO)
            {
                foreach (var p in new NlAttrs(a.Value))
                {
                    switch (p.Type)
                    {
                        case Ctnl.PROTO_NUM:
                            proto = NlAttrs.U8(p.Value);
                            break;
                        case Ctnl.PROTO_SRC_PORT:
                            sport = NlAttrs.Be16(p.Value);
                            break;
                        case Ctnl.PROTO_DST_PORT:
                            dport = NlAttrs.Be16(p.Value);
                            break;
                    }
                }
            }
        }

        if (src is null || dst is null)
        {
            throw NlAttrs.Malformed($"a conntrack entry's {direction} tuple lacks its IPv4 {(src is null ? "source" : "destination")}");
        }

        return new ConntrackTuple(src, dst, (ProtocolType)proto, sport, dport);
    }

    private static uint Be32(ReadOnlySpan<byte> v, string what) => v.Length >= 4
        ? BinaryPrimitives.ReadUInt32BigEndian(v)
        : throw NlAttrs.Malformed(string.Create(CultureInfo.InvariantCulture, $"{what} has {v.Length} bytes, not 4"));
}
