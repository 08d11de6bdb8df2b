using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Loom.Core.AgentApi;

/// <summary>One request, one response, over the agent's unix socket.</summary>
public static class AgentClient
{
    /// <summary>
    /// The wire alone, on a blocking socket: sends <paramref name="requestLine"/> (one JSON line, newline included) and
    /// returns the answer up to its newline. For the short-lived callers (loom-cni, <c>loom status</c>) that write and
    /// read their messages by hand: an async socket starts the runtime's socket thread, and <see cref="SendAsync"/>'s
    /// JSON context roots every message type in their binaries.
    /// </summary>
    public static byte[] ExchangeLine(string socketPath, ReadOnlySpan<byte> requestLine, TimeSpan timeout)
    {
        var ms = (int)timeout.TotalMilliseconds;
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { SendTimeout = ms, ReceiveTimeout = ms };
        socket.Connect(new UnixDomainSocketEndPoint(socketPath));
        socket.Send(requestLine);
        // Up to the first newline; the agent answers one line and may keep the connection open.
        var got = new System.Buffers.ArrayBufferWriter<byte>(512);
        while (true)
        {
            var span = got.GetSpan(4096);
            var n = socket.Receive(span);
            if (n == 0)
            {
                throw new IOException($"agent at {socketPath} closed the connection without answering");
            }

            var nl = span[..n].IndexOf((byte)'\n');
            got.Advance(nl < 0 ? n : nl);
            if (nl >= 0)
            {
                return got.WrittenSpan.ToArray();
            }
        }
    }

    public static async Task<AgentResponse> SendAsync(string socketPath, AgentRequest request, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cts.Token).ConfigureAwait(false);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        var line = JsonSerializer.Serialize(request, AgentApiJsonContext.Default.AgentRequest) + "\n";
        await stream.WriteAsync(Encoding.UTF8.GetBytes(line), cts.Token).ConfigureAwait(false);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var reply = await reader.ReadLineAsync(cts.Token).ConfigureAwait(false)
                    ?? throw new IOException($"agent at {socketPath} closed the connection without answering");
        return JsonSerializer.Deserialize(reply, AgentApiJsonContext.Default.AgentResponse)
               ?? throw new IOException($"agent at {socketPath} sent an empty answer");
    }
}
