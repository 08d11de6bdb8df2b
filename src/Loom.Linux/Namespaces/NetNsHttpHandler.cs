using System.Net;
using System.Net.Sockets;

namespace Loom.Linux;

/// <summary>
/// An HTTP handler whose every connection is a socket made on a thread inside a network namespace (then used from any
/// thread), so a process in the root namespace reaches a server in a lab namespace and nothing beyond it.
/// </summary>
public static class NetNsHttpHandler
{
    /// <summary>A handler connecting inside <paramref name="ns"/> (which must outlive it), no proxy; hosts are IP literals.</summary>
    public static SocketsHttpHandler Create(NetNsHandle ns) => new()
    {
        UseProxy = false,
        ConnectCallback = (ctx, ct) => ConnectAsync(ns, ctx, ct),
    };

    /// <summary>
    /// A connect callback that opens the namespace by name for each connection, so it holds no handle between them
    /// (for a client whose lifetime the caller does not control, such as a store); hosts are IP literals.
    /// </summary>
    public static Func<SocketsHttpConnectionContext, CancellationToken, ValueTask<Stream>> ConnectIn(string netns) => async (ctx, ct) =>
    {
        using var ns = NetNs.Open(netns);
        return await ConnectAsync(ns, ctx, ct).ConfigureAwait(false);
    };

    private static async ValueTask<Stream> ConnectAsync(NetNsHandle ns, SocketsHttpConnectionContext ctx, CancellationToken ct)
    {
        var socket = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        try
        {
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Parse(ctx.DnsEndPoint.Host), ctx.DnsEndPoint.Port), ct).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
