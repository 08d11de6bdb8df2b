namespace Loom.Core.Policy;

/// <summary>Which way traffic goes, seen from the endpoint a policy entry belongs to. The values are the BPF maps' (bpf/policy.c).</summary>
public enum PolicyDirection : byte
{
    /// <summary>To the endpoint.</summary>
    Ingress = 0,

    /// <summary>From the endpoint.</summary>
    Egress = 1,
}
