using System.Text.Json.Serialization;
using Loom.Core.AgentApi;

namespace Loom.Cli;

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AgentResponse))]
internal sealed partial class CliJsonContext : JsonSerializerContext;
