using System.Text.Json.Serialization;
using Loom.Core.Selection;

namespace Loom.Core.Model;

/// <summary>
/// A Kubernetes NetworkPolicy (networking.k8s.io/v1), as stored: which pods it selects in its namespace and, per
/// direction it names, the peers and ports those pods may talk to. Several policies on one pod are a union; a pod that
/// no policy selects for a direction is open in that direction (under <see cref="PolicyEnforcementMode.Default"/>).
/// </summary>
public sealed record NetworkPolicy
{
    public required string Namespace { get; init; }

    public required string Name { get; init; }

    /// <summary>The pods of <see cref="Namespace"/> it applies to; the empty selector selects every pod there.</summary>
    public LabelSelector PodSelector { get; set; } = new();

    /// <summary>
    /// The directions it isolates, as written; null when the manifest omits it. Omitted or empty: Ingress, plus Egress
    /// when it has an egress section (<see cref="EffectivePolicyTypes"/>).
    /// </summary>
    public IReadOnlyList<PolicyType>? PolicyTypes { get; set; }

    /// <summary>Ingress rules; an empty list with Ingress among the types allows no ingress.</summary>
    public IReadOnlyList<NetworkPolicyIngressRule> Ingress { get; set; } = [];

    public IReadOnlyList<NetworkPolicyEgressRule> Egress { get; set; } = [];

    [JsonIgnore]
    public string Key => ObjectKey.Of(Namespace, Name);

    /// <summary>The API server's defaulting of policyTypes (SetDefaults_NetworkPolicy): absent or empty is Ingress, plus Egress with egress rules.</summary>
    [JsonIgnore]
    public IReadOnlyList<PolicyType> EffectivePolicyTypes =>
        PolicyTypes is { Count: > 0 } types ? types : Egress.Count > 0 ? [PolicyType.Ingress, PolicyType.Egress] : [PolicyType.Ingress];
}

public enum PolicyType
{
    [JsonStringEnumMemberName("Ingress")]
    Ingress,

    [JsonStringEnumMemberName("Egress")]
    Egress,
}

/// <summary>Traffic from any of <see cref="From"/> (every source when empty) to any of <see cref="Ports"/> (every port when empty).</summary>
public sealed record NetworkPolicyIngressRule
{
    public IReadOnlyList<NetworkPolicyPeer> From { get; set; } = [];

    public IReadOnlyList<NetworkPolicyPort> Ports { get; set; } = [];
}

/// <summary>Traffic to any of <see cref="To"/> (every destination when empty) on any of <see cref="Ports"/> (every port when empty).</summary>
public sealed record NetworkPolicyEgressRule
{
    public IReadOnlyList<NetworkPolicyPeer> To { get; set; } = [];

    public IReadOnlyList<NetworkPolicyPort> Ports { get; set; } = [];
}

/// <summary>
/// One peer: exactly one of (pod and/or namespace selector) or <see cref="IPBlock"/>. Pod selector alone: pods of the
/// policy's namespace; namespace selector alone: every pod of the matching namespaces; both: the matching pods of the
/// matching namespaces (AND).
/// </summary>
public sealed record NetworkPolicyPeer
{
    public LabelSelector? PodSelector { get; set; }

    public LabelSelector? NamespaceSelector { get; set; }

    public IPBlock? IPBlock { get; set; }
}

/// <summary>A CIDR and the CIDRs inside it that are excluded.</summary>
public sealed record IPBlock
{
    public required string Cidr { get; init; }

    public IReadOnlyList<string> Except { get; set; } = [];
}

/// <summary>
/// A port (number, or a container port's name resolved per destination pod) or, with <see cref="EndPort"/>, the range
/// Port..EndPort; null <see cref="Port"/>: every port of <see cref="Protocol"/>. Protocol defaults to TCP.
/// </summary>
public sealed record NetworkPolicyPort
{
    public Protocol Protocol { get; set; } = Protocol.Tcp;

    /// <summary>A number ("80") or an IANA service name ("http"), as the manifest's int-or-string; null: all ports.</summary>
    public string? Port { get; set; }

    public int? EndPort { get; set; }
}
