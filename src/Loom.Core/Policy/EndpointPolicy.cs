namespace Loom.Core.Policy;

/// <summary>
/// What one endpoint enforces, compiled from every policy that selects it: per direction whether it is isolated
/// (then only <see cref="Rules"/> pass, besides replies of allowed connections), and the entries of its BPF policy map.
/// </summary>
public sealed record EndpointPolicy
{
    public static EndpointPolicy Open { get; } = new();

    public bool IngressEnforced { get; init; }

    public bool EgressEnforced { get; init; }

    public IReadOnlyList<PolicyRule> Rules { get; init; } = [];

    public IReadOnlyList<PolicyCidr> Cidrs { get; init; } = [];

    /// <summary>Keys ("namespace/name") of the policies that select it for ingress, in order.</summary>
    public IReadOnlyList<string> IngressPolicies { get; init; } = [];

    public IReadOnlyList<string> EgressPolicies { get; init; } = [];
}
