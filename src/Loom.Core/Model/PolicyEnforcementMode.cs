using System.Text.Json.Serialization;

namespace Loom.Core.Model;

/// <summary>Cilium's <c>policyEnforcementMode</c>: which endpoints NetworkPolicy isolates.</summary>
public enum PolicyEnforcementMode
{
    /// <summary>A pod is isolated only once a policy selects it.</summary>
    [JsonStringEnumMemberName("default")]
    Default,

    /// <summary>Every pod is isolated; only what a policy allows passes.</summary>
    [JsonStringEnumMemberName("always")]
    Always,

    /// <summary>Policies are ignored.</summary>
    [JsonStringEnumMemberName("never")]
    Never,
}
