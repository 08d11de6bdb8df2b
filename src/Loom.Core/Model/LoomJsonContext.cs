using System.Text.Json;
using System.Text.Json.Serialization;
using Loom.Core.Migration;
using Loom.Core.Policy;
using Loom.Core.Pool;

namespace Loom.Core.Model;

/// <summary>
/// Source-generated (de)serialization of everything Loom stores: no reflection, so AOT and trimming are safe.
/// Properties with defaults use <c>set</c>, not <c>init</c>: the generator assigns every init-only property
/// in its object initializer, so a field missing from the JSON would overwrite the default with null/0.
/// </summary>
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
[JsonSerializable(typeof(NodeConfig))]
[JsonSerializable(typeof(Network))]
[JsonSerializable(typeof(ClusterMigration))]
[JsonSerializable(typeof(NetworkPolicy))]
[JsonSerializable(typeof(ClusterNamespace))]
[JsonSerializable(typeof(SecurityIdentity))]
[JsonSerializable(typeof(IdentityKey))]
[JsonSerializable(typeof(IdentityRef))]
public sealed partial class LoomJsonContext : JsonSerializerContext
{
}
