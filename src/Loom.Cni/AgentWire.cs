using System.Buffers;
using System.Text.Json;

namespace Loom.Cni;

/// <summary>
/// The agent protocol's two CNI requests (one JSON line out, one in: <c>Loom.Core.AgentApi.AgentClient</c>'s wire),
/// written and read by hand, exchanged on a blocking socket (<c>AgentClient.ExchangeLine</c>). Why not
/// <c>AgentClient.SendAsync</c>: its source-generated context roots every agent message type (status, services,
/// flows) and the serializer's machinery in this binary, about a third of its code,
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
        return Parse(Loom.Core.AgentApi.AgentClient.ExchangeLine(socketPath, line.WrittenSpan, timeout));
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
