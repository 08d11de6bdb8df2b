using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Loom.Linux.Interop;

/// <summary>One message received from the kernel (copied out of the receive buffer).</summary>
internal readonly record struct NlMessage(ushort Type, ushort Flags, byte[] Payload);

/// <summary>
/// An AF_NETLINK socket (NETLINK_ROUTE unless told; ctnetlink uses NETLINK_NETFILTER). It is bound to the network namespace of the thread that created
/// it for its whole life, so it can be created inside NetNs.Run and then used from any thread.
/// Requests are serialised by a lock; replies are matched by sequence number.
/// </summary>
internal sealed unsafe class NetlinkSocket : IDisposable
{
    private const int MaxDumpRetries = 10;
    private readonly Lock _lock = new();
    // Uninitialised: the GC would zero (and so fault in) all 256 KB of it at once for a socket that mostly reads a
    // few hundred bytes per reply; only [0, n) of a datagram is ever read back.
    private readonly byte[] _rx = GC.AllocateUninitializedArray<byte>(256 * 1024);
    private int _fd;
    private uint _seq = (uint)Environment.TickCount;

    private NetlinkSocket(int fd) => _fd = fd;

    public static NetlinkSocket Open(int protocol = Libc.NETLINK_ROUTE)
    {
        var fd = Libc.socket(Libc.AF_NETLINK, Libc.SOCK_RAW | Libc.SOCK_CLOEXEC, protocol);
        if (fd < 0)
        {
            throw Libc.Error("socket(AF_NETLINK)");
        }

        try
        {
            var one = 1;
            // EXT_ACK: kernel explains failures in NLMSGERR_ATTR_MSG. CAP_ACK: don't echo our request back in errors.
            if (Libc.setsockopt(fd, Libc.SOL_NETLINK, Libc.NETLINK_EXT_ACK, &one, 4) != 0
                || Libc.setsockopt(fd, Libc.SOL_NETLINK, Libc.NETLINK_CAP_ACK, &one, 4) != 0)
            {
                throw Libc.Error("setsockopt(SOL_NETLINK)");
            }

            var rcvbuf = 1 << 20;
            _ = Libc.setsockopt(fd, Libc.SOL_SOCKET, Libc.SO_RCVBUF, &rcvbuf, 4);

            // sockaddr_nl { family, pad, pid = 0 (kernel assigns), groups = 0 }
            Span<byte> sa = stackalloc byte[12];
            sa.Clear();
            BinaryPrimitives.WriteUInt16LittleEndian(sa, Libc.AF_NETLINK);
            fixed (byte* p = sa)
            {
                if (Libc.bind(fd, p, 12) != 0)
                {
                    throw Libc.Error("bind(AF_NETLINK)");
                }
            }

            return new NetlinkSocket(fd);
        }
        catch
        {
            Libc.close(fd);
            throw;
        }
    }

    /// <summary>
    /// Sends a request with NLM_F_ACK and waits for the kernel's ack; throws NetlinkException on error.
    /// Returns any replies that preceded the ack (a non-dump RTM_GET* answers with one message, then the ack).
    /// </summary>
    public List<NlMessage> Execute(NlRequest req, string? subject)
    {
        lock (_lock)
        {
            var seq = Send(req, Nl.F_ACK);
            var replies = new List<NlMessage>();
            while (true)
            {
                foreach (var m in Receive(seq))
                {
                    if (m.Type == Nl.NLMSG_ERROR)
                    {
                        ThrowIfError(m, req.Type, subject);
                        return replies;
                    }

                    replies.Add(m);
                }
            }
        }
    }

    /// <summary>Runs an NLM_F_DUMP request; restarts it when the kernel flags NLM_F_DUMP_INTR (table changed mid-dump).</summary>
    public List<NlMessage> Dump(NlRequest req, string? subject = null)
    {
        lock (_lock)
        {
            for (var attempt = 0; ; attempt++)
            {
                var seq = Send(req, 0);
                var result = new List<NlMessage>();
                var interrupted = false;
                var done = false;
                while (!done)
                {
                    foreach (var m in Receive(seq))
                    {
                        interrupted |= (m.Flags & Nl.F_DUMP_INTR) != 0;
                        done |= CollectDump(m, result, req.Type, subject);
                    }
                }

                if (!interrupted)
                {
                    return result;
                }

                if (attempt >= MaxDumpRetries)
                {
                    throw new NetlinkException(Libc.EINTR, Rtm.Name(req.Type), subject, "dump kept being interrupted");
                }
            }
        }
    }

    /// <summary>
    /// Takes one message of a dump reply: data messages go to <paramref name="result"/>; returns true at its end
    /// (NLMSG_DONE or an ack) and throws NetlinkException when the kernel reports an error.
    /// </summary>
    internal static bool CollectDump(NlMessage m, List<NlMessage> result, ushort requestType, string? subject)
    {
        switch (m.Type)
        {
            case Nl.NLMSG_DONE:
                if (m.Payload.Length >= 4 && BinaryPrimitives.ReadInt32LittleEndian(m.Payload) is < 0 and var err)
                {
                    throw new NetlinkException(-err, Rtm.Name(requestType), subject, null);
                }

                return true;
            case Nl.NLMSG_ERROR:
                ThrowIfError(m, requestType, subject);
                return true;
            case Nl.NLMSG_NOOP:
                return false;
            default:
                result.Add(m);
                return false;
        }
    }

    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
        {
            Libc.close(fd);
        }
    }

    /// <summary>Throws the NetlinkException an NLMSG_ERROR carries; returns when it is an ack (error 0).</summary>
    internal static void ThrowIfError(NlMessage m, ushort requestType, string? subject)
    {
        // struct nlmsgerr { int error; struct nlmsghdr msg; [payload unless capped] } then ext-ack TLVs.
        var p = m.Payload;
        if (p.Length < 4)
        {
            throw NlAttrs.Malformed($"NLMSG_ERROR has {p.Length} bytes, no error code");
        }

        var error = BinaryPrimitives.ReadInt32LittleEndian(p);
        if (error == 0)
        {
            return;
        }

        string? text = null;
        if ((m.Flags & Nl.F_ACK_TLVS) != 0 && p.Length >= 4 + Nl.HeaderSize)
        {
            // Unless capped, our request is echoed whole; its nlmsg_len is a u32 that must stay inside the payload
            // (a bigger one would wrap negative as an int).
            long offset = 4 + Nl.HeaderSize;
            if ((m.Flags & Nl.F_CAPPED) == 0)
            {
                offset = 4 + (((long)BinaryPrimitives.ReadUInt32LittleEndian(p.AsSpan(4)) + 3) & ~3L);
            }

            if (offset <= p.Length)
            {
                foreach (var a in new NlAttrs(p.AsSpan((int)offset)))
                {
                    if (a.Type == Nl.NLMSGERR_ATTR_MSG)
                    {
                        text = NlAttrs.Str(a.Value);
                    }
                }
            }
        }

        throw new NetlinkException(-error, Rtm.Name(requestType), subject, text);
    }

    /// <summary>Splits one datagram into its messages, keeping those that answer <paramref name="seq"/>.</summary>
    internal static List<NlMessage> Split(ReadOnlySpan<byte> data, uint seq)
    {
        var list = new List<NlMessage>();
        while (data.Length >= Nl.HeaderSize)
        {
            var hdr = MemoryMarshal.Read<NlMsgHdr>(data);
            // nlmsg_len is a u32: compare it as one before it is used as an int length.
            if (hdr.Len < Nl.HeaderSize || hdr.Len > (uint)data.Length)
            {
                break;
            }

            var len = (int)hdr.Len;
            if (hdr.Seq == seq)
            {
                list.Add(new NlMessage(hdr.Type, hdr.Flags, data[Nl.HeaderSize..len].ToArray()));
            }

            data = data[Math.Min(NlRequest.Align(len), data.Length)..];
        }

        return list;
    }

    private uint Send(NlRequest req, ushort extraFlags)
    {
        ObjectDisposedException.ThrowIf(_fd < 0, this);
        var seq = ++_seq;
        var bytes = req.Finish(seq);
        // Flags live at offset 6 of the header; add NLM_F_REQUEST and the caller's extras.
        var buf = bytes.ToArray();
        BinaryPrimitives.WriteUInt16LittleEndian(buf.AsSpan(6), (ushort)(req.Flags | Nl.F_REQUEST | extraFlags));
        fixed (byte* b = buf)
        {
            while (true)
            {
                var n = Libc.send(_fd, b, (nuint)buf.Length, 0);
                if (n >= 0)
                {
                    return seq;
                }

                if (Libc.Errno != Libc.EINTR)
                {
                    throw Libc.Error("send(netlink)", Rtm.Name(req.Type));
                }
            }
        }
    }

    // Reads one datagram and returns the messages in it that answer `seq` (stale replies are dropped).
    private List<NlMessage> Receive(uint seq)
    {
        int n;
        fixed (byte* b = _rx)
        {
            while (true)
            {
                n = (int)Libc.recv(_fd, b, (nuint)_rx.Length, Libc.MSG_TRUNC);
                if (n >= 0)
                {
                    break;
                }

                if (Libc.Errno != Libc.EINTR)
                {
                    throw Libc.Error("recv(netlink)");
                }
            }
        }

        if (n > _rx.Length)
        {
            throw new LinuxException($"netlink datagram truncated ({n} bytes)");
        }

        return Split(_rx.AsSpan(0, n), seq);
    }
}
