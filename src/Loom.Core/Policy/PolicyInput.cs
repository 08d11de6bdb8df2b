using Loom.Core.Model;
using Loom.Core.Validation;

namespace Loom.Core.Policy;

/// <summary>
/// The cluster state a policy compiles against: the policies, the namespaces (a namespace without an object has only
/// its name label), every identity in use with its label set (peers compile to the identities their selectors match)
/// and the cluster's endpoints (egress named ports resolve on the peer's pods).
/// </summary>
public sealed class PolicyInput
{
    private readonly Dictionary<uint, List<PolicyEndpoint>> _byIdentity;

    public PolicyInput(
        IReadOnlyList<NetworkPolicy> policies,
        IReadOnlyDictionary<string, ClusterNamespace> namespaces,
        IReadOnlyDictionary<uint, SecurityLabels> identities,
        IReadOnlyList<PolicyEndpoint> endpoints)
    {
        Policies = policies ?? throw new ArgumentNullException(nameof(policies));
        Namespaces = namespaces ?? throw new ArgumentNullException(nameof(namespaces));
        Identities = identities ?? throw new ArgumentNullException(nameof(identities));
        Endpoints = endpoints ?? throw new ArgumentNullException(nameof(endpoints));
        _byIdentity = endpoints.GroupBy(e => e.Identity).ToDictionary(g => g.Key, g => g.ToList());
        Invalid = policies.Select(p => (p.Key, Errors: PolicyValidation.Validate(p))).Where(p => p.Errors.Count > 0)
            .ToDictionary(p => p.Key, p => p.Errors, StringComparer.Ordinal);
    }

    public static PolicyInput Empty { get; } = new([], new Dictionary<string, ClusterNamespace>(), new Dictionary<uint, SecurityLabels>(), []);

    public IReadOnlyList<NetworkPolicy> Policies { get; }

    public IReadOnlyDictionary<string, ClusterNamespace> Namespaces { get; }

    public IReadOnlyDictionary<uint, SecurityLabels> Identities { get; }

    public IReadOnlyList<PolicyEndpoint> Endpoints { get; }

    /// <summary>
    /// Policies that fail validation (they should never have been stored), by key, with their errors. They still
    /// select and isolate their pods but allow nothing: a broken policy fails closed, never open.
    /// </summary>
    public IReadOnlyDictionary<string, IReadOnlyList<FieldError>> Invalid { get; }

    /// <summary>A namespace's labels as selectors see them: its object's, always with its name label.</summary>
    public IReadOnlyDictionary<string, string> NamespaceLabels(string name) =>
        Namespaces.TryGetValue(name, out var ns) ? ns.EffectiveLabels : new ClusterNamespace { Name = name }.EffectiveLabels;

    /// <summary>The endpoints that have an identity (the pods an egress named port resolves on).</summary>
    public IReadOnlyList<PolicyEndpoint> EndpointsOf(uint identity) => _byIdentity.TryGetValue(identity, out var list) ? list : [];

    /// <summary>
    /// The policies that select a pod for a direction: same namespace, podSelector matching its labels, the direction
    /// among the effective policyTypes. In the order given (for <c>loom explain policy</c> as for compilation).
    /// </summary>
    public IReadOnlyList<NetworkPolicy> SelectingPolicies(string podNamespace, IReadOnlyDictionary<string, string> podLabels, PolicyDirection direction)
    {
        ArgumentNullException.ThrowIfNull(podLabels);
        var type = direction == PolicyDirection.Ingress ? PolicyType.Ingress : PolicyType.Egress;
        return [.. Policies.Where(p => p.Namespace == podNamespace && p.PodSelector.Matches(podLabels) && p.EffectivePolicyTypes.Contains(type))];
    }

    public IReadOnlyList<NetworkPolicy> SelectingPolicies(PolicyEndpoint endpoint, PolicyDirection direction)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        return SelectingPolicies(endpoint.Namespace, endpoint.Labels, direction);
    }
}
