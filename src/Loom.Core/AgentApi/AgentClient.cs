using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Loom.Core.AgentApi;

/// <summary>One request, one response, over the agent's unix socket.</summary>
public static class AgentClient
{
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
