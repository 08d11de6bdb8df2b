using System.Net;
using Loom.Core.Model;
using Loom.Lab;

namespace Loom.Lab.Tests;

/// <summary>The topology picture labels each node's cni0 with its pod CIDR's gateway, as the agent configures it.</summary>
public sealed class TopologySvgTests
{
    [Fact]
    public void Each_node_shows_its_pod_cidr_and_the_gateway_on_cni0()
    {
        var state = new LabState
        {
            Prefix = "svgtest-",
            LabDir = "/nonexistent",
            Store = "file",
            UnderlayNetns = "svgtest-underlay",
            Nodes = [new LabNode { Name = "k8s-ctr", Netns = "svgtest-k8s-ctr", Ip = "192.168.10.100" }, new LabNode { Name = "k8s-w1", Netns = "svgtest-k8s-w1", Ip = "192.168.10.101" }],
        };
        var nodes = new Dictionary<string, Node>
        {
            ["k8s-ctr"] = new() { Name = "k8s-ctr", UnderlayInterface = "eth1", UnderlayIp = IPAddress.Parse("192.168.10.100"), PodCidrs = [IPNetwork.Parse("10.244.2.0/24")] },
        };

        var svg = TopologySvg.Render(state, nodes, [], []);

        Assert.Contains("pod CIDR 10.244.2.0/24", svg, StringComparison.Ordinal);
        Assert.Contains("cni0 10.244.2.1/24 (gateway)", svg, StringComparison.Ordinal);
        Assert.Contains("cni0 - (gateway)", svg, StringComparison.Ordinal); // k8s-w1 has no node object yet
    }
}
