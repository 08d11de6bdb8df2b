using System.Text.Json.Serialization;

namespace Loom.Core.Model;

/// <summary>
/// A Kubernetes Namespace: its name and labels, which NetworkPolicy namespace selectors match. As the API server does,
/// the label <c>kubernetes.io/metadata.name</c> always holds the name (<see cref="EffectiveLabels"/>).
/// </summary>
public sealed record ClusterNamespace
{
    public const string NameLabel = "kubernetes.io/metadata.name";

    public required string Name { get; init; }

    public IReadOnlyDictionary<string, string> Labels { get; set; } = new Dictionary<string, string>();

    [JsonIgnore]
    public IReadOnlyDictionary<string, string> EffectiveLabels =>
        new Dictionary<string, string>(Labels, StringComparer.Ordinal) { [NameLabel] = Name };
}
