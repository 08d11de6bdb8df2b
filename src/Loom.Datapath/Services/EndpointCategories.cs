using Loom.Core.Model;

namespace Loom.Datapath.Services;

/// <summary>
/// kube-proxy's CategorizeEndpoints and the decisions its rule writers take from it (pkg/proxy/topology.go,
/// serviceport.go, iptables and nftables proxier.go): which endpoints the Cluster and Local policies use, whether the
/// ClusterIP and the external destinations (node port, external IPs) have an endpoint to go to, and which policy
/// chains exist. Shared by the iptables and nftables renderers so both decide alike.
/// </summary>
internal sealed class EndpointCategories
{
    public EndpointCategories(ServicePortState s)
    {
        External = s.IsExternal;
        InternalLocal = s.InternalTrafficPolicy == TrafficPolicy.Local;
        // kube-proxy: externalPolicyLocal only for a port reachable from outside at all.
        ExternalLocal = External && s.ExternalTrafficPolicy == TrafficPolicy.Local;
        Local = [.. s.LocalBackends];
        HasEndpoints = s.HasBackends;
        // Cluster endpoints serve the ClusterIP under Cluster, and every external port (Local short-circuits use them).
        UsesCluster = HasEndpoints && (!InternalLocal || External);
        UsesLocal = Local.Count > 0 && (InternalLocal || ExternalLocal);
        HasInternalEndpoints = HasEndpoints && (!InternalLocal || Local.Count > 0);
        HasExternalEndpoints = HasEndpoints && (!ExternalLocal || Local.Count > 0);
        Reachable = UsesCluster ? s.Backends : UsesLocal ? Local : [];
    }

    public bool External { get; }

    public bool InternalLocal { get; }

    public bool ExternalLocal { get; }

    public bool HasEndpoints { get; }

    /// <summary>The endpoints on this node, in the service's order.</summary>
    public IReadOnlyList<BackendAddress> Local { get; }

    /// <summary>The Cluster policy's chain (KUBE-SVC / service-) exists: every endpoint.</summary>
    public bool UsesCluster { get; }

    /// <summary>The Local policy's chain (KUBE-SVL) exists: the local endpoints.</summary>
    public bool UsesLocal { get; }

    /// <summary>ClusterIP traffic has somewhere to go; else REJECT (no endpoints) or DROP (no local endpoints).</summary>
    public bool HasInternalEndpoints { get; }

    /// <summary>Node-port and external-IP traffic has somewhere to go; else REJECT or DROP.</summary>
    public bool HasExternalEndpoints { get; }

    /// <summary>The external chain (KUBE-EXT / external-) exists: it also holds the short-circuits, so even without local endpoints.</summary>
    public bool UsesExternalChain => HasEndpoints && External;

    /// <summary>Every endpoint some policy chain jumps to: these get endpoint chains.</summary>
    public IReadOnlyList<BackendAddress> Reachable { get; }

    /// <summary>What a port without a usable endpoint gets: kube-proxy's filter target and comment.</summary>
    public (string Target, string Comment) NoEndpoints(ServicePortState s) =>
        HasEndpoints ? ("DROP", $"{s.Name} has no local endpoints") : ("REJECT", $"{s.Name} has no endpoints");
}
