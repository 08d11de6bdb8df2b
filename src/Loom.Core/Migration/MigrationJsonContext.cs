using System.Text.Json;
using System.Text.Json.Serialization;
using Loom.Core.Model;

namespace Loom.Core.Migration;

/// <summary><c>migrate status -o json</c>, spelled as the store spells the migration (enum names, CIDRs as text).</summary>
[JsonSourceGenerationOptions(
    JsonSerializerDefaults.Web,
    UseStringEnumConverter = true,
    WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    Converters = [typeof(IPAddressJsonConverter), typeof(IPNetworkJsonConverter)])]
[JsonSerializable(typeof(MigrationStatusReport))]
public sealed partial class MigrationJsonContext : JsonSerializerContext;
