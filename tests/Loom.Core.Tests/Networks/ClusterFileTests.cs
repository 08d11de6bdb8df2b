using System.Net;
using System.Text.Json;
using Loom.Core.Model;
using Loom.Core.Networks;

namespace Loom.Core.Tests.Networks;

public class ClusterFileTests
{
    internal static string Example(string name)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !Directory.Exists(Path.Combine(dir.FullName, "examples", "cluster")))
        {
            dir = dir.Parent;
        }

        return File.ReadAllText(Path.Combine(dir?.FullName ?? throw new InvalidOperationException("examples/cluster not found"), "examples", "cluster", name));
    }

    private static string Json(ClusterConfig c) => JsonSerializer.Serialize(c, LoomJsonContext.Default.ClusterConfig);

    private static ClusterFileException Refused(string yaml) => Assert.Throws<ClusterFileException>(() => ClusterFileParser.Parse(yaml));

    [Fact]
    public void Flannel_example_is_todays_default_cluster()
    {
        var file = ClusterFileParser.Parse(Example("flannel.yaml"));
        Assert.Equal(Json(new ClusterConfig()), Json(file.Cluster));
        Assert.Equal([Network.Flannel()], file.Networks);
        Assert.Equal(Json(ClusterFile.Default().Cluster), Json(file.Cluster));
    }

    [Fact]
    public void Cilium_example_is_routed_native_with_bpf_host_routing_and_masquerade()
    {
        var file = ClusterFileParser.Parse(Example("cilium.yaml"));
        var n = Assert.Single(file.Networks);
        Assert.Equal(new Network
        {
            Name = "cilium",
            PodCidr = IPNetwork.Parse("10.245.0.0/16"),
            Plumbing = Plumbing.Routed,
            RoutingMode = RoutingMode.Native,
            AutoDirectNodeRoutes = true,
            NativeRoutingCidr = IPNetwork.Parse("10.245.0.0/16"),
            HostRouting = HostRouting.Bpf,
            Masquerade = Masquerade.Bpf,
        }, n);
        Assert.Equal("cilium", file.Cluster.DefaultNetwork);
        Assert.Equal(ServiceProxyMode.Ebpf, file.Cluster.ServiceBackend);
        Assert.Equal([IPNetwork.Parse("10.245.0.0/16")], file.Cluster.PodCidrPools);
        Assert.Equal(RoutingMode.Native, file.Cluster.Routing);
    }

    [Fact]
    public void Cilium_tunnel_example_has_its_own_device_and_port()
    {
        var n = Assert.Single(ClusterFileParser.Parse(Example("cilium-tunnel.yaml")).Networks);
        Assert.Equal(Plumbing.Routed, n.Plumbing);
        Assert.Equal(new TunnelConfig { Device = "loom_vxlan", Port = 8473, Vni = 2 }, n.Tunnel);
    }

    [Fact]
    public void Flannel_and_cilium_tunnel_together_are_a_valid_migration_cluster()
    {
        var flannel = Example("flannel.yaml").Split("defaultNetwork:")[0];
        var cilium = Example("cilium-tunnel.yaml").Split("networks:\n")[1].Split("defaultNetwork:")[0];
        var file = ClusterFileParser.Parse(flannel + cilium + "defaultNetwork: flannel\npolicyEnforcementMode: always\n");
        Assert.Equal(["flannel", "cilium"], file.Networks.Select(n => n.Name));
        Assert.Equal(PolicyEnforcementMode.Always, file.Cluster.PolicyEnforcementMode);
        Assert.Equal(Json(new ClusterConfig { PolicyEnforcementMode = PolicyEnforcementMode.Always }), Json(file.Cluster));
    }

    [Fact]
    public void Omitted_settings_default_to_flannels_and_a_lone_network_is_the_default()
    {
        var file = ClusterFileParser.Parse("networks:\n  - name: flannel\n    podCIDR: 10.244.0.0/16\n");
        Assert.Equal([Network.Flannel()], file.Networks);
        Assert.Equal(Json(new ClusterConfig()), Json(file.Cluster));
    }

    [Fact]
    public void The_block_grace_is_read_and_a_negative_one_refused()
    {
        const string Flannel = "networks:\n  - name: flannel\n    podCIDR: 10.244.0.0/16\n";
        Assert.Equal(120, ClusterFileParser.Parse(Flannel + "podCidrGraceSeconds: 120\n").Cluster.PodCidrGraceSeconds);
        Assert.Equal(0, ClusterFileParser.Parse(Flannel + "podCidrGraceSeconds: 0\n").Cluster.PodCidrGraceSeconds);
        Assert.Equal(86400, ClusterFileParser.Parse(Flannel).Cluster.PodCidrGraceSeconds);
        var e = Refused(Flannel + "podCidrGraceSeconds: -5\n");
        Assert.Contains(e.Errors, m => m.Contains("podCidrGraceSeconds: Invalid value: -5: must be 0", StringComparison.Ordinal));
    }

    [Fact]
    public void Unknown_keys_are_refused_with_line_and_column()
    {
        var e = Refused("networks:\n  - name: a\n    podCIDR: 10.244.0.0/16\n    tunnel:\n      prot: vxlan\nserviceBackends: ebpf\n");
        Assert.Equal(
            ["line 5, column 7: networks[0].tunnel.prot: Invalid value: unknown field", "line 6, column 1: serviceBackends: Invalid value: unknown field"],
            e.Errors);
    }

    [Theory]
    [InlineData("  - name: a\n    podCIDR: 10.244.0.7/16\n", "line 3, column 5: networks[0].podCIDR: Invalid value: \"10.244.0.7/16\": must be a CIDR without host bits")]
    [InlineData("  - name: a\n    podCIDR: 10.244.0.0/16\n    nodeMaskSize: big\n", "line 4, column 5: networks[0].nodeMaskSize: Invalid value: \"big\": must be an integer")]
    [InlineData("  - name: a\n    podCIDR: 10.244.0.0/16\n    plumbing: bridged\n", "line 4, column 5: networks[0].plumbing: Unsupported value: \"bridged\": supported values: \"bridge\", \"routed\"")]
    [InlineData("  - name: a\n    podCIDR: 10.244.0.0/16\n    autoDirectNodeRoutes: yes\n", "line 4, column 5: networks[0].autoDirectNodeRoutes: Invalid value: \"yes\": must be true or false")]
    [InlineData("  - name: a\n    podCIDR: 10.244.0.0/16\n    tunnel: loom.1\n", "line 4, column 5: networks[0].tunnel: Invalid value: must be a mapping")]
    [InlineData("  - just-a-name\n", "line 2, column 5: networks[0]: Invalid value: must be a mapping (a network)")]
    public void Wrong_types_name_the_key_and_its_position(string networks, string error)
    {
        var e = Refused("networks:\n" + networks);
        Assert.StartsWith(error, Assert.Single(e.Errors), StringComparison.Ordinal);
    }

    [Fact]
    public void Validation_errors_point_at_the_key()
    {
        var e = Refused("networks:\n  - name: a\n    podCIDR: 10.244.0.0/16\n    routingMode: native\n");
        // The key is absent: the error points at its network.
        Assert.StartsWith("line 2, column 5: networks[0].autoDirectNodeRoutes: Invalid value: \"false\": routingMode: native needs autoDirectNodeRoutes: true: the lab's underlay is one L2 segment",
            Assert.Single(e.Errors), StringComparison.Ordinal);

        var port = Refused("networks:\n  - name: a\n    podCIDR: 10.244.0.0/16\n    tunnel:\n      port: 0\n");
        Assert.StartsWith("line 5, column 7: networks[0].tunnel.port: Invalid value: 0", Assert.Single(port.Errors), StringComparison.Ordinal);
    }

    [Fact]
    public void Default_network_must_exist_and_is_required_with_several()
    {
        const string two = "networks:\n  - name: a\n    podCIDR: 10.244.0.0/16\n  - name: b\n    podCIDR: 10.245.0.0/16\n    plumbing: routed\n    tunnel: {port: 8473, device: loom_b}\n";
        Assert.Equal(["line 1, column 1: defaultNetwork: Required value: the network new pods join unless a NodeConfig says otherwise"], Refused(two).Errors);
        Assert.Equal(["line 8, column 1: defaultNetwork: Invalid value: \"c\": no such network; the networks are: \"a\", \"b\""], Refused(two + "defaultNetwork: c\n").Errors);
        Assert.Equal("b", ClusterFileParser.Parse(two + "defaultNetwork: b\n").Cluster.DefaultNetwork);
    }

    [Fact]
    public void A_cluster_needs_a_network()
    {
        Assert.Contains("networks: Required value", Refused("defaultNetwork: a\n").Errors[0], StringComparison.Ordinal);
        Assert.Contains("networks: Required value", Refused("networks: []\n").Errors[0], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("- a\n")]
    [InlineData("networks: [\n")]
    [InlineData("a: 1\n---\nb: 2\n")]
    [InlineData("networks:\n  - name: a\n    name: b\n")]
    public void Malformed_files_are_refused_with_a_message(string yaml)
    {
        var e = Refused(yaml);
        Assert.NotEmpty(e.Errors);
        Assert.All(e.Errors, m => Assert.False(string.IsNullOrWhiteSpace(m)));
    }

    [Fact]
    public void Network_files_hold_one_network_per_document()
    {
        var networks = ClusterFileParser.ParseNetworks("name: a\npodCIDR: 10.244.0.0/16\n---\nname: b\npodCIDR: 10.245.0.0/16\nroutingMode: native\nautoDirectNodeRoutes: true\n");
        Assert.Equal(["a", "b"], networks.Select(n => n.Name));
        Assert.Null(networks[1].Tunnel);

        var dup = Assert.Throws<ClusterFileException>(() => ClusterFileParser.ParseNetworks("name: a\npodCIDR: 10.244.0.0/16\n---\nname: a\npodCIDR: 10.245.0.0/16\n"));
        Assert.Equal(["line 4, column 1: name: Duplicate value: \"a\""], dup.Errors);
        var bad = Assert.Throws<ClusterFileException>(() => ClusterFileParser.ParseNetworks("name: a\npodCIDR: 10.244.0.0/16\nnodeMaskSize: 8\n"));
        Assert.StartsWith("line 3, column 1: nodeMaskSize: Invalid value: 8: must be between 16", Assert.Single(bad.Errors), StringComparison.Ordinal);
        Assert.Throws<ClusterFileException>(() => ClusterFileParser.ParseNetworks("# nothing\n"));
    }

    [Fact]
    public void Network_yaml_reads_back_as_the_same_network()
    {
        foreach (var n in ClusterFileParser.Parse(Example("cilium.yaml")).Networks.Concat([Network.Flannel() with { Name = "true" }]))
        {
            Assert.Equal(n, Assert.Single(ClusterFileParser.ParseNetworks(NetworkYaml.Write(n))));
        }
    }

    [Fact]
    public void Network_json_uses_the_files_key_names()
    {
        var json = JsonSerializer.Serialize(ClusterFileParser.Parse(Example("cilium.yaml")).Networks[0], LoomJsonContext.Default.Network);
        Assert.Equal("{\"name\":\"cilium\",\"podCIDR\":\"10.245.0.0/16\",\"nodeMaskSize\":24,\"plumbing\":\"routed\",\"routingMode\":\"native\","
            + "\"autoDirectNodeRoutes\":true,\"nativeRoutingCIDR\":\"10.245.0.0/16\",\"hostRouting\":\"bpf\",\"masquerade\":\"bpf\"}", json);
        Assert.Equal(Network.Flannel(), JsonSerializer.Deserialize(JsonSerializer.Serialize(Network.Flannel(), LoomJsonContext.Default.Network), LoomJsonContext.Default.Network));
    }
}
