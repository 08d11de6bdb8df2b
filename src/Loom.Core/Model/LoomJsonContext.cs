using System.Text.Json;
using System.Text.Json.Serialization;
using Loom.Core.Pool;

namespace Loom.Core.Model;

/// <summary>Source-generated (de)serialization of everything Loom stores: no reflection, so AOT and trimming are safe.</summary>
[JsonSourceGenerationOptions(
    JsonSerializerDefaults.Web,
    UseStringEnumConverter = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    Converters = [typeof(IPAddressJsonConverter), typeof(IPNetworkJsonConverter)])]
[JsonSerializable(typeof(Node))]
[JsonSerializable(typeof(Endpoint))]
[JsonSerializable(typeof(Service))]
[JsonSerializable(typeof(ClusterConfig))]
[JsonSerializable(typeof(PodCidrClaim))]
public sealed partial class LoomJsonContext : JsonSerializerContext
{
}
