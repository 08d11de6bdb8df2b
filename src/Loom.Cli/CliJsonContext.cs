using System.Text.Json.Serialization;
using Loom.Core.AgentApi;

namespace Loom.Cli;

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AgentResponse))]
[JsonSerializable(typeof(StatusReply))]
internal sealed partial class CliJsonContext : JsonSerializerContext;

/// <summary>
/// The status op's answer: <see cref="AgentResponse"/> without the other ops' fields, whose JSON metadata (flows,
/// services) <c>loom status</c> would otherwise build at every run. The same JSON: the agent leaves them out.
/// </summary>
internal sealed record StatusReply
{
    public bool Ok { get; init; }

    public string? Error { get; init; }

    public AgentStatus? Status { get; init; }
}
