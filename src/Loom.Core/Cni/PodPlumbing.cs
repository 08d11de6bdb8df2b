namespace Loom.Core.Cni;

/// <summary>How loom-cni wires a pod to its node (the network config's <c>"plumbing"</c>).</summary>
public enum PodPlumbing
{
    /// <summary>Flannel's delegate: a bridge (cni0) with the pods' veths on it and the gateway on the bridge.</summary>
    Bridge,

    /// <summary>Cilium's: no bridge, a veth per pod, the pod's address a /32, a host route per pod, the node routes.</summary>
    Routed,
}
