using System.Buffers;
using System.Net.Sockets;
using System.Text.Json;

namespace Loom.Cni;

/// <summary>
/// The agent protocol's two CNI requests (one JSON line out, one in: <c>Loom.Core.AgentApi.AgentClient</c>'s wire),
/// written and read by hand on a blocking socket. Why not AgentClient: its source-generated context roots every agent
/// message type (status, services, flows) and the serializer's machinery in this binary, about a third of its code,
/// and every call pays for that size at start (the runtime rehydrates its data); its async socket also starts the
/// runtime's socket engine thread. Field names are those of <c>AgentApiJsonContext</c> (camelCase, nulls omitted).
/// </summary>
internal static class AgentWire
{
    public readonly record struct Reply(bool Ok, string? Error);

    public static Reply Send(string socketPath, Action<Utf8JsonWriter> writeRequest, TimeSpan timeout)
    {
        var line = new ArrayBufferWriter<byte>(512);
        using (var w = new Utf8JsonWriter(line))
        {
            writeRequest(w);
        }

        line.Write("\n"u8);
        var ms = (int)timeout.TotalMilliseconds;
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { SendTimeout = ms, ReceiveTimeout = ms };
        socket.Connect(new UnixDomainSocketEndPoint(socketPath));
        socket.Send(line.WrittenSpan);
        return Parse(ReadLine(socket, socketPath));
    }

    // Up to the first newline; the agent answers one line and may keep the connection open.
    private static byte[] ReadLine(Socket socket, string socketPath)
    {
        var got = new ArrayBufferWriter<byte>(512);
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

    /// <summary>The reply's <c>ok</c> and <c>error</c>; every other member is skipped.</summary>
    internal static Reply Parse(ReadOnlySpan<byte> json)
    {
        var r = new Utf8JsonReader(json);
        if (!r.Read() || r.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("the agent's answer is not a JSON object");
        }

        bool ok = false;
        string? error = null;
        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            var isOk = r.ValueTextEquals("ok"u8);
            var isError = r.ValueTextEquals("error"u8);
            r.Read();
            if (isOk && r.TokenType is JsonTokenType.True or JsonTokenType.False)
            {
                ok = r.GetBoolean();
            }
            else if (isError && r.TokenType == JsonTokenType.String)
            {
                error = r.GetString();
            }
            else
            {
                r.Skip();
            }
        }

        return new Reply(ok, error);
    }
}
