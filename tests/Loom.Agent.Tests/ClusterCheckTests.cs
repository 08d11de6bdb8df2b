using System.Net;
using Loom.Core.Model;

namespace Loom.Agent.Tests;

public sealed class ClusterCheckTests
{
    private static readonly AgentConfig Agent = new() { Node = "k8s-w1", Iface = "eth1" };

    [Fact]
    public void The_default_cluster_config_is_usable() => Assert.Empty(ClusterCheck.Errors(new ClusterConfig(), Agent));

    [Theory]
    [InlineData("eth1", "is not a device Loom owns")]
    [InlineData("cni0", "is not a device Loom owns")]
    [InlineData("flannel.1", "is not a device Loom owns")]
    [InlineData("", "is not a Linux interface name")]
    [InlineData("loom.0123456789ab", "is not a Linux interface name")] // 16 characters
    [InlineData("loom 1", "is not a Linux interface name")]
    [InlineData("loom/1", "is not a Linux interface name")]
    public void A_tunnel_device_loom_does_not_own_is_refused(string device, string reason)
    {
        var cluster = new ClusterConfig { Tunnel = new TunnelConfig { Device = device } };
        var e = Assert.Throws<AgentStartException>(() => ClusterCheck.Validate(cluster, Agent));
        Assert.Contains($"tunnel.device: \"{device}\" {reason}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_loom_named_underlay_is_not_taken_for_the_tunnel() =>
        Assert.Contains("is not a device Loom owns", ClusterCheck.TunnelDeviceError("loom0", "loom0"), StringComparison.Ordinal);

    [Fact]
    public void Pools_mask_tunnel_numbers_and_service_range_are_checked()
    {
        var cluster = new ClusterConfig
        {
            PodCidrPools = [IPNetwork.Parse("10.0.0.0/8"), IPNetwork.Parse("10.244.0.0/16")],
            NodeMaskSize = 31,
            ServiceCidr = IPNetwork.Parse("10.96.0.0/12"),
            Tunnel = new TunnelConfig { Vni = 0, Port = 70000 },
        };
        var errors = ClusterCheck.Errors(cluster, Agent).ToList();
        Assert.Contains("podCidrPools: 10.0.0.0/8 overlaps 10.244.0.0/16", errors);
        Assert.Contains(errors, e => e.StartsWith("nodeMaskSize: /31", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("serviceCidr: 10.96.0.0/12 overlaps", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("tunnel.vni: 0", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("tunnel.port: 70000", StringComparison.Ordinal));
    }

    [Fact]
    public void A_maglev_table_size_that_is_not_prime_is_refused()
    {
        var agent = Agent with { LoadBalancerAlgorithm = "maglev", MaglevTableSize = 1000 };
        Assert.Contains(ClusterCheck.Errors(new ClusterConfig(), agent), e => e.StartsWith("maglevTableSize (agent config): Maglev table size must be prime", StringComparison.Ordinal));
    }
}
