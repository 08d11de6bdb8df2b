using System.Security.Cryptography;
using System.Text;
using Loom.Core.Model;

namespace Loom.Core.Policy;

/// <summary>
/// The label set an identity stands for, in Cilium's form: <c>k8s:KEY</c> for each pod label,
/// <c>k8s:io.cilium.k8s.namespace.labels.KEY</c> for each label of the pod's namespace and
/// <c>k8s:io.kubernetes.pod.namespace</c> for the namespace itself. Pods with equal sets share one identity, so labels
/// that differ per pod or per rollout without meaning anything to policy are left out (<see cref="IsSecurityRelevant"/>);
/// a selector on one of those matches no pod, as in Cilium.
/// </summary>
public sealed class SecurityLabels : IEquatable<SecurityLabels>
{
    public const string Source = "k8s:";
    public const string NamespaceKey = Source + "io.kubernetes.pod.namespace";
    public const string NamespaceLabelPrefix = Source + "io.cilium.k8s.namespace.labels.";

    // Cilium's default label filter, the exact keys: rollout hashes, per-pod and per-job names.
    private static readonly HashSet<string> Ignored = new(StringComparer.Ordinal)
    {
        "pod-template-hash", "pod-template-generation", "controller-revision-hash", "statefulset.kubernetes.io/pod-name",
        "apps.kubernetes.io/pod-index", "job-name", "controller-uid", "batch.kubernetes.io/job-name", "batch.kubernetes.io/controller-uid",
        "batch.kubernetes.io/job-completion-index", "etcd_node",
    };

    private readonly SortedDictionary<string, string> _labels;

    private SecurityLabels(SortedDictionary<string, string> labels)
    {
        _labels = labels;
        Canonical = string.Join(";", labels.Select(kv => kv.Key + "=" + kv.Value));
    }

    /// <summary>Every label, sorted by key (ordinal).</summary>
    public IReadOnlyDictionary<string, string> Labels => _labels;

    /// <summary><c>KEY=VALUE</c> pairs sorted by key, joined by ';' (neither occurs in a label): equal sets, equal text.</summary>
    public string Canonical { get; }

    /// <summary>The pod's namespace; null for a set that is not a pod's.</summary>
    public string? Namespace => _labels.GetValueOrDefault(NamespaceKey);

    /// <summary>The pod labels (without the <c>k8s:</c> source), as a podSelector sees them.</summary>
    public IReadOnlyDictionary<string, string> PodLabels =>
        _labels.Where(kv => kv.Key.StartsWith(Source, StringComparison.Ordinal) && kv.Key != NamespaceKey
                && !kv.Key.StartsWith(NamespaceLabelPrefix, StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key[Source.Length..], kv => kv.Value, StringComparer.Ordinal);

    /// <summary>The namespace's labels, as a namespaceSelector sees them.</summary>
    public IReadOnlyDictionary<string, string> NamespaceLabels =>
        _labels.Where(kv => kv.Key.StartsWith(NamespaceLabelPrefix, StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key[NamespaceLabelPrefix.Length..], kv => kv.Value, StringComparer.Ordinal);

    /// <summary>
    /// The set of a pod in <paramref name="podNamespace"/>; the namespace's name label
    /// (<see cref="ClusterNamespace.NameLabel"/>) is added when missing, as the API server always sets it.
    /// </summary>
    public static SecurityLabels Of(string podNamespace, IReadOnlyDictionary<string, string> podLabels, IReadOnlyDictionary<string, string> namespaceLabels)
    {
        ArgumentException.ThrowIfNullOrEmpty(podNamespace);
        ArgumentNullException.ThrowIfNull(podLabels);
        ArgumentNullException.ThrowIfNull(namespaceLabels);
        var labels = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in podLabels)
        {
            if (IsSecurityRelevant(key))
            {
                labels[Source + key] = value;
            }
        }

        foreach (var (key, value) in namespaceLabels)
        {
            labels[NamespaceLabelPrefix + key] = value;
        }

        labels[NamespaceLabelPrefix + ClusterNamespace.NameLabel] = podNamespace;
        labels[NamespaceKey] = podNamespace;
        return new SecurityLabels(labels);
    }

    /// <summary>A set as stored (every key with the <c>k8s:</c> source); throws on a key without it.</summary>
    public static SecurityLabels FromLabels(IReadOnlyDictionary<string, string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (labels.Keys.FirstOrDefault(k => !k.StartsWith(Source, StringComparison.Ordinal)) is { } bad)
        {
            throw new ArgumentException($"security label \"{bad}\" has no \"{Source}\" source", nameof(labels));
        }

        return new SecurityLabels(new SortedDictionary<string, string>(labels.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal), StringComparer.Ordinal));
    }

    /// <summary>
    /// False for pod labels that say which rollout, job or replica a pod is (they would split one workload into many
    /// identities), and for the keys this form reserves (a pod label must not pose as its namespace's).
    /// </summary>
    public static bool IsSecurityRelevant(string podLabelKey)
    {
        ArgumentNullException.ThrowIfNull(podLabelKey);
        return !Ignored.Contains(podLabelKey)
            && !podLabelKey.StartsWith("annotation", StringComparison.Ordinal)
            && !(Source + podLabelKey).StartsWith(NamespaceLabelPrefix, StringComparison.Ordinal)
            && Source + podLabelKey != NamespaceKey;
    }

    /// <summary>
    /// The reserved identity of a set that has one without allocation: <see cref="ReservedIdentity.KubeDns"/> for the
    /// cluster DNS's pods (k8s-app=kube-dns in kube-system, whatever else they carry); null for every other set.
    /// </summary>
    public static uint? IdentityFor(SecurityLabels labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        return labels.Namespace == "kube-system" && labels.Labels.GetValueOrDefault(Source + "k8s-app") == "kube-dns" ? ReservedIdentity.KubeDns : null;
    }

    /// <summary>SHA-256 of <see cref="Canonical"/>, lower-case hex: a bounded store key for any set.</summary>
    public string Hash() => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Canonical)));

    public bool Equals(SecurityLabels? other) => other is not null && string.Equals(Canonical, other.Canonical, StringComparison.Ordinal);

    public override bool Equals(object? obj) => Equals(obj as SecurityLabels);

    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Canonical);

    public override string ToString() => Canonical;
}
