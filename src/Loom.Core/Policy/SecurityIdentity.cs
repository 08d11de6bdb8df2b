using System.Globalization;
using System.Text.Json.Serialization;

namespace Loom.Core.Policy;

/// <summary>
/// A cluster-wide numeric identity and the security label set it stands for (store kind "identity", keyed by the id
/// in decimal). Its creation claims the number; <see cref="Pending"/> until the allocator has bound the label set to it
/// (<see cref="IdentityKey"/>), so a record left pending by a crashed allocator can be told apart and collected.
/// </summary>
public sealed record SecurityIdentity
{
    public required uint Id { get; init; }

    /// <summary>The labels, as <see cref="SecurityLabels.Labels"/> (every key with the <c>k8s:</c> source).</summary>
    public IReadOnlyDictionary<string, string> Labels { get; set; } = new Dictionary<string, string>();

    public bool Pending { get; set; }

    /// <summary>When the number was claimed; garbage collection leaves younger identities alone.</summary>
    public DateTimeOffset Created { get; set; }

    [JsonIgnore]
    public string Key => KeyOf(Id);

    public static string KeyOf(uint id) => id.ToString(CultureInfo.InvariantCulture);
}
