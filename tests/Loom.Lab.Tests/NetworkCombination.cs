using System.Net;
using Loom.Core.Model;
using Loom.Core.Networks;

namespace Loom.Lab.Tests;

/// <summary>One of issue 12's network combinations: the cluster file a lab comes up with, and what its datapath must show.</summary>
public sealed record NetworkCombination(string Name, ClusterFile File)
{
    /// <summary>
    /// Routed over native routes with the host stack forwarding and iptables masquerading; its pool and its
    /// nativeRoutingCIDR lie in the datacenter's 192.168.0.0/16 with the underlay, so traffic to the underlay's
    /// router is not masqueraded and arrives with the pod's own address.
    /// </summary>
    public const string NativeLegacyYaml = """
        networks:
          - name: native
            podCIDR: 192.168.128.0/17
            nodeMaskSize: 24
            plumbing: routed
            routingMode: native
            autoDirectNodeRoutes: true
            nativeRoutingCIDR: 192.168.0.0/16
            hostRouting: legacy
            masquerade: iptables
        defaultNetwork: native
        serviceBackend: nftables
        policyEnforcementMode: default
        """;

    /// <summary>The runtime's CNI config for a bridge network (flannel's) and for a routed one (Cilium's 05-cilium.conflist).</summary>
    public const string BridgeConflist = "10-loom.conflist";

    public const string RoutedConflist = "05-loom.conflist";

    public static TheoryData<string> All => ["flannel", "cilium-tunnel", "native-legacy", "cilium"];

    public Network Network => File.Networks.Single(n => n.Name == File.Cluster.DefaultNetwork);

    public bool Routed => Network.Plumbing == Plumbing.Routed;

    public string Conflist => Routed ? RoutedConflist : BridgeConflist;

    /// <summary>Whether a pod's traffic to the underlay router leaves its node with the node's address.</summary>
    public bool MasqueradesToUnderlay =>
        Network.Masquerade != Masquerade.None && !(Network.NativeRoutingCidr ?? Network.PodCidr).Contains(IPAddress.Parse(Lab.UnderlayRouter));

    public static NetworkCombination For(string name) => new(name, name switch
    {
        "flannel" => ClusterFileParser.Parse(LabClusterFileTests.Example("flannel.yaml")),
        "cilium-tunnel" => ClusterFileParser.Parse(LabClusterFileTests.Example("cilium-tunnel.yaml")),
        "native-legacy" => ClusterFileParser.Parse(NativeLegacyYaml),
        "cilium" => ClusterFileParser.Parse(LabClusterFileTests.Example("cilium.yaml")),
        _ => throw new ArgumentException($"no combination '{name}'", nameof(name)),
    });

    public override string ToString() => Name;
}
