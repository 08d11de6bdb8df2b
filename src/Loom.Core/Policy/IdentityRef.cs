using System.Globalization;
using System.Text.Json.Serialization;

namespace Loom.Core.Policy;

/// <summary>A node's use of an identity (store kind "identityref", keyed "ID/NODE"): while one exists the identity is kept.</summary>
public sealed record IdentityRef
{
    public required uint Id { get; init; }

    public required string Node { get; init; }

    [JsonIgnore]
    public string Key => KeyOf(Id, Node);

    public static string KeyOf(uint id, string node) => string.Create(CultureInfo.InvariantCulture, $"{id}/{node}");
}
