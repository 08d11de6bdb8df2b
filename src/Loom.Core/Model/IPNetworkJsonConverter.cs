using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Loom.Core.Model;

/// <summary>
/// IPNetwork as CIDR text ("10.244.1.0/24"). IPNetwork.TryParse silently clears host bits ("10.244.1.7/24"
/// becomes 10.244.1.0/24); a stored CIDR with host bits is a bug somewhere, so it is rejected instead.
/// </summary>
public sealed class IPNetworkJsonConverter : JsonConverter<IPNetwork>
{
    public override IPNetwork Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var text = reader.GetString();
        var slash = text?.IndexOf('/', StringComparison.Ordinal) ?? -1;
        return text is not null && IPNetwork.TryParse(text, out var network)
               && slash > 0 && IPAddress.TryParse(text.AsSpan(0, slash), out var address) && address.Equals(network.BaseAddress)
            ? network
            : throw new JsonException($"not a CIDR without host bits: '{text}'");
    }

    public override void Write(Utf8JsonWriter writer, IPNetwork value, JsonSerializerOptions options)
        => writer.WriteStringValue(value.ToString());
}
