using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Loom.Core.Model;

/// <summary>IPAddress as its text form ("10.0.0.1", "fd00::1"); no reflection, so it is safe under AOT.</summary>
public sealed class IPAddressJsonConverter : JsonConverter<IPAddress>
{
    public override IPAddress Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var text = reader.GetString();
        return text is not null && IPAddress.TryParse(text, out var address)
            ? address
            : throw new JsonException($"not an IP address: '{text}'");
    }

    public override void Write(Utf8JsonWriter writer, IPAddress value, JsonSerializerOptions options)
        => writer.WriteStringValue(value.ToString());
}
