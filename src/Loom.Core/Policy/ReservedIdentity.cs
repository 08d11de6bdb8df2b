namespace Loom.Core.Policy;

/// <summary>Numeric identities with a fixed meaning (Cilium's numbers), and the ranges the rest are drawn from.</summary>
public static class ReservedIdentity
{
    /// <summary>Not known (yet): treated as world.</summary>
    public const uint Unknown = 0;

    /// <summary>The local node itself (its addresses on the underlay and the pod networks).</summary>
    public const uint Host = 1;

    /// <summary>Anything outside the cluster.</summary>
    public const uint World = 2;

    /// <summary>Another node of the cluster.</summary>
    public const uint RemoteNode = 6;

    /// <summary>The cluster DNS's own pods (k8s-app=kube-dns in kube-system), as Cilium's well-known identity.</summary>
    public const uint KubeDns = 102;

    /// <summary>The first identity allocated for a label set.</summary>
    public const uint MinAllocated = 256;

    /// <summary>The last identity allocated for a label set (16 bits, as Cilium's cluster-scoped identities).</summary>
    public const uint MaxAllocated = 65535;

    /// <summary>The first synthetic identity of an endpoint's ipBlock regions (Cilium's local CIDR identities start here).</summary>
    public const uint CidrBase = 1u << 24;
}
