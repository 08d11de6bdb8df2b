using System.Net;
using Loom.Core.Model;
using Loom.Core.Selection;
using Loom.Core.Validation;

namespace Loom.Core.Tests.Validation;

public class NetworkValidationTests
{
    private static readonly Network Flannel = Network.Flannel();

    private static readonly Network Cilium = new()
    {
        Name = "cilium",
        PodCidr = IPNetwork.Parse("10.245.0.0/16"),
        Plumbing = Plumbing.Routed,
        RoutingMode = RoutingMode.Native,
        AutoDirectNodeRoutes = true,
        NativeRoutingCidr = IPNetwork.Parse("10.245.0.0/16"),
        HostRouting = HostRouting.Bpf,
        Masquerade = Masquerade.Bpf,
    };

    private static string One(Network n) => Assert.Single(NetworkValidation.Validate(n)).ToString();

    [Fact]
    public void Flannel_and_cilium_networks_are_valid() => Assert.Empty(NetworkValidation.Validate(Flannel).Concat(NetworkValidation.Validate(Cilium)));

    [Theory]
    [InlineData("", "name: Required value")]
    [InlineData("Flannel", "name: Invalid value: \"Flannel\": a lowercase RFC 1123 label")]
    public void Names_are_dns_labels(string name, string error) => Assert.StartsWith(error, One(Flannel with { Name = name }), StringComparison.Ordinal);

    [Fact]
    public void Pool_is_required_ipv4_and_mask_sizes_fit_it()
    {
        Assert.StartsWith("podCIDR: Required value", One(Flannel with { PodCidr = default }), StringComparison.Ordinal);
        Assert.StartsWith("podCIDR: Required value", One(Flannel with { PodCidr = IPNetwork.Parse("0.0.0.0/0") }), StringComparison.Ordinal);
        Assert.StartsWith("podCIDR: Invalid value: \"fd00::/64\": must be an IPv4 CIDR", One(Flannel with { PodCidr = IPNetwork.Parse("fd00::/64") }), StringComparison.Ordinal);
        Assert.Equal("nodeMaskSize: Invalid value: 15: must be between 16 (the podCIDR's prefix) and 30 (room for the node's gateway and a pod)",
            One(Flannel with { NodeMaskSize = 15 }));
        Assert.StartsWith("nodeMaskSize: Invalid value: 31", One(Flannel with { NodeMaskSize = 31 }), StringComparison.Ordinal);
        Assert.Empty(NetworkValidation.Validate(Flannel with { NodeMaskSize = 16 }));
    }

    [Fact]
    public void Tunnel_settings_are_checked()
    {
        Assert.StartsWith("tunnel: Required value", One(Flannel with { Tunnel = null }), StringComparison.Ordinal);
        Assert.StartsWith("tunnel.port: Invalid value: 65536", One(Flannel with { Tunnel = new TunnelConfig { Port = 65536 } }), StringComparison.Ordinal);
        Assert.StartsWith("tunnel.vni: Invalid value: 0", One(Flannel with { Tunnel = new TunnelConfig { Vni = 0 } }), StringComparison.Ordinal);
        Assert.StartsWith("tunnel.vni: Invalid value: 16777216", One(Flannel with { Tunnel = new TunnelConfig { Vni = 16777216 } }), StringComparison.Ordinal);
        Assert.StartsWith("tunnel.device: Invalid value: \"loom.vxlan.longer\": interface name is too long", One(Flannel with { Tunnel = new TunnelConfig { Device = "loom.vxlan.longer" } }), StringComparison.Ordinal);
        Assert.StartsWith("tunnel.device: Invalid value: \"eth1\": must start with \"loom\"", One(Flannel with { Tunnel = new TunnelConfig { Device = "eth1" } }), StringComparison.Ordinal);
        Assert.StartsWith("tunnel.device: Invalid value: \"loom_host\"", One(Flannel with { Tunnel = new TunnelConfig { Device = "loom_host" } }), StringComparison.Ordinal);
        Assert.StartsWith("tunnel.protocol: Unsupported value", One(Flannel with { Tunnel = new TunnelConfig { Protocol = (TunnelProtocol)7 } }), StringComparison.Ordinal);
    }

    [Fact]
    public void Native_routing_needs_direct_routes_on_the_l2_underlay_and_no_tunnel()
    {
        var e = One(Cilium with { AutoDirectNodeRoutes = false });
        Assert.StartsWith("autoDirectNodeRoutes: Invalid value: \"false\": routingMode: native needs autoDirectNodeRoutes: true", e, StringComparison.Ordinal);
        Assert.Contains("one L2 segment", e, StringComparison.Ordinal);
        Assert.StartsWith("tunnel: Forbidden", One(Cilium with { Tunnel = new TunnelConfig() }), StringComparison.Ordinal);
        Assert.StartsWith("autoDirectNodeRoutes: Forbidden: only with routingMode: native", One(Flannel with { AutoDirectNodeRoutes = true }), StringComparison.Ordinal);
    }

    [Fact]
    public void Native_routing_cidr_must_cover_the_pool()
    {
        Assert.StartsWith("nativeRoutingCIDR: Invalid value: \"10.245.0.0/17\": must contain the podCIDR 10.245.0.0/16",
            One(Cilium with { NativeRoutingCidr = IPNetwork.Parse("10.245.0.0/17") }), StringComparison.Ordinal);
        Assert.Empty(NetworkValidation.Validate(Cilium with { NativeRoutingCidr = IPNetwork.Parse("10.0.0.0/8") }));
    }

    [Fact]
    public void Bpf_host_routing_needs_routed_plumbing_and_no_iptables_masquerade()
    {
        Assert.StartsWith("hostRouting: Invalid value: \"bpf\": needs plumbing: routed", One(Cilium with { Plumbing = Plumbing.Bridge }), StringComparison.Ordinal);
        Assert.StartsWith("masquerade: Invalid value: \"iptables\": cannot go with hostRouting: bpf", One(Cilium with { Masquerade = Masquerade.Iptables }), StringComparison.Ordinal);
        Assert.Empty(NetworkValidation.Validate(Cilium with { Masquerade = Masquerade.None }));
    }

    [Fact]
    public void Bridge_plumbing_with_native_routing_is_flannels_host_gw_and_valid() =>
        Assert.Empty(NetworkValidation.Validate(Flannel with { RoutingMode = RoutingMode.Native, Tunnel = null, AutoDirectNodeRoutes = true }));

    [Fact]
    public void Two_networks_may_not_share_pool_addresses_a_port_or_a_device()
    {
        var second = Flannel with { Name = "second", PodCidr = IPNetwork.Parse("10.244.128.0/17"), NodeMaskSize = 24 };
        var errors = new List<FieldError>();
        ClusterValidation.Networks(errors, [Flannel, second]);
        Assert.Equal(
        [
            "networks[1].podCIDR: Invalid value: \"10.244.128.0/17\": overlaps the podCIDR 10.244.0.0/16 of network \"flannel\"",
            "networks[1].tunnel.port: Invalid value: 8472: network \"flannel\" already tunnels on this UDP port; a node has one VXLAN socket per port",
            "networks[1].tunnel.device: Invalid value: \"loom.1\": network \"flannel\" already uses this device",
            "networks[1].plumbing: Invalid value: \"bridge\": network \"flannel\" is already the bridge network; a node has one pod bridge (cni0): use routed plumbing",
        ], errors.Select(e => e.ToString()));

        errors.Clear();
        ClusterValidation.Networks(errors, [Flannel, Flannel with { PodCidr = IPNetwork.Parse("10.246.0.0/16"), Plumbing = Plumbing.Routed, Tunnel = new TunnelConfig { Port = 8473, Device = "loom_vxlan" } }]);
        Assert.Equal("networks[1].name: Duplicate value: \"flannel\"", Assert.Single(errors).ToString());

        errors.Clear();
        ClusterValidation.Networks(errors, [Flannel, Cilium, Cilium with { Name = "tunnel", PodCidr = IPNetwork.Parse("10.246.0.0/16"), NativeRoutingCidr = null,
            RoutingMode = RoutingMode.Tunnel, AutoDirectNodeRoutes = false, Tunnel = new TunnelConfig { Port = 8473, Device = "loom_vxlan" } }]);
        Assert.Empty(errors);
    }

    [Fact]
    public void Cluster_settings_are_checked_against_the_networks()
    {
        Assert.Empty(ClusterValidation.Validate(new ClusterConfig(), [Flannel]));
        Assert.Equal("defaultNetwork: Invalid value: \"cilium\": no such network; the networks are: \"flannel\"",
            Assert.Single(ClusterValidation.Validate(new ClusterConfig { DefaultNetwork = "cilium" }, [Flannel])).ToString());
        Assert.Equal("networks[0].podCIDR: Invalid value: \"10.96.0.0/16\": overlaps the service CIDR 10.96.0.0/12",
            Assert.Single(ClusterValidation.Validate(new ClusterConfig(), [Flannel with { PodCidr = IPNetwork.Parse("10.96.0.0/16") }])).ToString());
        Assert.StartsWith("serviceBackend: Unsupported value",
            Assert.Single(ClusterValidation.Validate(new ClusterConfig { ServiceBackend = (ServiceProxyMode)9 }, [Flannel])).ToString(), StringComparison.Ordinal);
        Assert.StartsWith("networks: Required value", ClusterValidation.Validate(new ClusterConfig(), [])[0].ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Node_configs_name_existing_networks_and_valid_selectors()
    {
        Assert.Empty(ClusterValidation.NodeConfig(new NodeConfig { Node = "k8s-w1", Network = "flannel" }, [Flannel]));
        Assert.Equal("network: Invalid value: \"cilium\": no such network; the networks are: \"flannel\"",
            Assert.Single(ClusterValidation.NodeConfig(new NodeConfig { Node = "k8s-w1", Network = "cilium" }, [Flannel])).ToString());
        var bad = new LabelSelector { MatchLabels = new Dictionary<string, string> { ["bad key!"] = "x" } };
        Assert.StartsWith("nodeSelector.matchLabels: Invalid value: \"bad key!\"",
            Assert.Single(ClusterValidation.NodeConfig(new NodeConfig { Node = "cilium-default", NodeSelector = bad }, [Flannel])).ToString(), StringComparison.Ordinal);
        Assert.StartsWith("node: Invalid value", Assert.Single(ClusterValidation.NodeConfig(new NodeConfig { Node = "Node_1" }, [Flannel])).ToString(), StringComparison.Ordinal);
    }
}
