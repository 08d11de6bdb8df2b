using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Loom.Core.Model;

/// <summary>IPNetwork as CIDR text ("10.244.1.0/24"). IPNetwork.TryParse rejects host bits set, which is what we want.</summary>
public sealed class IPNetworkJsonConverter : JsonConverter<IPNetwork>
{
    public override IPNetwork Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var text = reader.GetString();
        return text is not null && IPNetwork.TryParse(text, out var network)
            ? network
            : throw new JsonException($"not a CIDR: '{text}'");
    }

    public override void Write(Utf8JsonWriter writer, IPNetwork value, JsonSerializerOptions options)
        => writer.WriteStringValue(value.ToString());
}
