using Loom.Linux.Interop;

namespace Loom.Linux;

/// <summary>
/// rtnetlink client. Each operation is one request/ack (or dump) on a NETLINK_ROUTE socket.
/// Members are grouped per kernel object: Link.cs, Addr.cs, Route.cs, Neigh.cs, Fdb.cs.
/// The socket acts on the network namespace it was opened in, regardless of which thread later uses it.
/// </summary>
public partial interface INetlink : IDisposable
{
}

public static class Netlink
{
    /// <summary>Opens a client acting on the calling thread's network namespace.</summary>
    public static INetlink Open() => new RtNetlink(NetlinkSocket.Open());

    /// <summary>Opens a client acting on <paramref name="ns"/>: the socket is created on a thread inside it.</summary>
    public static INetlink OpenIn(NetNsHandle ns) => NetNs.Run(ns, Open);

    /// <summary>
    /// Like <see cref="OpenIn"/>, but the calling thread itself enters <paramref name="ns"/> for the socket() call and
    /// comes back (<see cref="NetNs.RunOnCurrentThread"/>): for a short-lived process (loom-cni) that would otherwise
    /// create, schedule and join a thread per namespace it touches.
    /// </summary>
    public static INetlink OpenInFromCurrentThread(NetNsHandle ns) => NetNs.RunOnCurrentThread(ns, Open);
}

internal sealed partial class RtNetlink(NetlinkSocket socket) : INetlink
{
    private readonly NetlinkSocket _socket = socket;

    public void Dispose() => _socket.Dispose();
}
