using System.Net;
using Loom.Core.Model;
using Loom.Datapath.Services;
using static Loom.Datapath.Tests.NodePortLab;

namespace Loom.Datapath.Tests;

/// <summary>
/// Node ports on a real kernel, the same for every rule backend: a client outside the cluster connects to the node's
/// address on the node port and reaches a pod behind the node, seen from the node (Cluster) or as itself (Local).
/// </summary>
public abstract class NodePortKernelTests : IDisposable
{
    private protected NodePortKernelTests() => Lab = new NodePortLab(2);

    private protected NodePortLab Lab { get; }

    public void Dispose()
    {
        Lab.Dispose();
        GC.SuppressFinalize(this);
    }

    private protected abstract IServiceBackend NewBackend(ServiceProxyOptions options);

    private protected void Sync(IServiceBackend b, params ServicePortState[] desired) => Lab.InNode(() => b.Sync(desired));

    [Fact]
    public void Cluster_policy_reaches_every_pod_masqueraded_to_the_node()
    {
        var b = NewBackend(new ServiceProxyOptions());
        Sync(b, NodePortService("web", "10.96.0.100", 30080, [1, 2], local: [1], TrafficPolicy.Cluster));
        var answers = Enumerable.Range(0, 30).Select(_ => Lab.FromClient(NodeIp, 30080)).ToHashSet();
        Assert.Equal([$"pod1 from {NodeIpTowards(1)}", $"pod2 from {NodeIpTowards(2)}"], answers.Order());
    }

    [Fact]
    public void Local_policy_uses_only_local_pods_and_keeps_the_clients_address()
    {
        var b = NewBackend(new ServiceProxyOptions());
        Sync(b, NodePortService("web", "10.96.0.100", 30080, [1, 2], local: [2], TrafficPolicy.Local));
        var answers = Enumerable.Range(0, 20).Select(_ => Lab.FromClient(NodeIp, 30080)).ToHashSet();
        Assert.Equal($"pod2 from {ClientIp}", Assert.Single(answers));
    }

    [Fact]
    public void Local_policy_without_a_local_pod_gets_no_connection()
    {
        var b = NewBackend(new ServiceProxyOptions());
        Sync(b, NodePortService("web", "10.96.0.100", 30080, [1, 2], local: [], TrafficPolicy.Local));
        Assert.Equal("timeout", Lab.FromClient(NodeIp, 30080, 1000));
        // The ClusterIP still serves every pod (internal traffic is Cluster).
        Assert.StartsWith("pod", Lab.FromClient(IPAddress.Parse("10.96.0.100"), 80), StringComparison.Ordinal);
    }

    [Fact]
    public void A_node_port_outside_node_port_addresses_is_not_served()
    {
        // Only node IPs inside --nodeport-addresses: the node's underlay address is not among them here.
        var b = NewBackend(new ServiceProxyOptions { NodePortAddresses = [IPNetwork.Parse("172.31.0.0/16")], NodeIps = [NodeIp] });
        Sync(b, NodePortService("web", "10.96.0.100", 30080, [1], local: [1], TrafficPolicy.Cluster));
        Assert.Equal("refused", Lab.FromClient(NodeIp, 30080, 1000));
        var served = NewBackend(new ServiceProxyOptions { NodePortAddresses = [IPNetwork.Parse("192.168.10.0/24")], NodeIps = [NodeIp] });
        Lab.InNode(served.Flush);
        Sync(served, NodePortService("web", "10.96.0.100", 30080, [1], local: [1], TrafficPolicy.Cluster));
        Assert.Equal($"pod1 from {NodeIpTowards(1)}", Lab.FromClient(NodeIp, 30080));
    }

    [Fact]
    public void A_service_added_after_a_node_port_one_works_and_the_node_port_still_does()
    {
        var b = NewBackend(new ServiceProxyOptions());
        var web = NodePortService("web", "10.96.0.100", 30080, [1], local: [1], TrafficPolicy.Cluster);
        Sync(b, web);
        var api = NodePortService("api", "10.96.0.101", 0, [2], local: [2], TrafficPolicy.Cluster) with { Type = ServiceType.ClusterIP };
        Sync(b, web, api); // a partial sync
        Assert.StartsWith("pod2 from ", Lab.FromClient(IPAddress.Parse("10.96.0.101"), 80), StringComparison.Ordinal);
        Assert.Equal($"pod1 from {NodeIpTowards(1)}", Lab.FromClient(NodeIp, 30080));
        AssertAfterPartialSync(b);
    }

    [Fact]
    public void A_restarted_backend_adopts_node_ports_and_drops_those_gone()
    {
        var web = NodePortService("web", "10.96.0.100", 30080, [1], local: [1], TrafficPolicy.Cluster);
        var old = NodePortService("old", "10.96.0.102", 30082, [1, 2], local: [], TrafficPolicy.Local);
        Sync(NewBackend(new ServiceProxyOptions()), web, old);
        Assert.Equal("timeout", Lab.FromClient(NodeIp, 30082, 1000)); // Local without a local endpoint: dropped
        Sync(NewBackend(new ServiceProxyOptions()), web);
        Assert.Equal($"pod1 from {NodeIpTowards(1)}", Lab.FromClient(NodeIp, 30080));
        Assert.Equal("refused", Lab.FromClient(NodeIp, 30082, 1000)); // neither forwarded nor dropped any more
    }

    [Fact]
    public void Explain_shows_the_node_port_rules()
    {
        var b = NewBackend(new ServiceProxyOptions());
        var web = NodePortService("web", "10.96.0.100", 30080, [1, 2], local: [1], TrafficPolicy.Local);
        var other = NodePortService("other", "10.96.0.101", 30081, [2], local: [], TrafficPolicy.Cluster);
        Sync(b, web, other);
        var text = Lab.Node.Run(() => b.Explain(web));
        foreach (var expected in ExplainedNodePort(web))
        {
            Assert.True(text.Contains(expected, StringComparison.Ordinal), $"missing {expected} in:\n{text}");
        }

        Assert.DoesNotContain("30081", text, StringComparison.Ordinal);
    }

    /// <summary>What Explain must show of <paramref name="s"/>'s node port (eTP Local, one local endpoint).</summary>
    private protected abstract IEnumerable<string> ExplainedNodePort(ServicePortState s);

    /// <summary>Backend-specific checks after the partial sync of the test above.</summary>
    private protected virtual void AssertAfterPartialSync(IServiceBackend b)
    {
    }
}

public sealed class IptablesNodePortKernelTests : NodePortKernelTests
{
    private protected override IServiceBackend NewBackend(ServiceProxyOptions options) => new IptablesServiceBackend(options);

    private protected override IEnumerable<string> ExplainedNodePort(ServicePortState s) =>
    [
        $"-A KUBE-NODEPORTS -p tcp -m comment --comment \"default/web\" -m tcp --dport 30080 -j {IptablesRules.ExternalChain(s)}",
        $"-A {IptablesRules.ExternalChain(s)} -j {IptablesRules.LocalChain(s)}",
        $"-A {IptablesRules.LocalChain(s)} -m comment --comment \"default/web -> 10.244.1.2:8080\" -j KUBE-SEP-",
        "--to-destination 10.244.1.2:8080",
    ];

    private protected override void AssertAfterPartialSync(IServiceBackend b)
    {
        Assert.False(((IptablesServiceBackend)b).LastSyncWasFull);
        var services = Lab.Shell("iptables-save", "-t", "nat").Split('\n').Where(l => l.StartsWith("-A KUBE-SERVICES ", StringComparison.Ordinal)).ToList();
        Assert.EndsWith("-j KUBE-NODEPORTS", services[^1], StringComparison.Ordinal);
        Assert.Equal(3, services.Count);
    }
}

public sealed class NftablesNodePortKernelTests : NodePortKernelTests
{
    private protected override IServiceBackend NewBackend(ServiceProxyOptions options) => new NftablesServiceBackend(options);

    private protected override IEnumerable<string> ExplainedNodePort(ServicePortState s) =>
    [
        $"element service-nodeports {{ tcp . 30080 : goto {KubeProxyNames.NftExternalChain(s.Name, "tcp")} }}",
        $"chain {KubeProxyNames.NftExternalChain(s.Name, "tcp")} {{",
        $"chain {KubeProxyNames.NftLocalChain(s.Name, "tcp")} {{",
        "dnat to 10.244.1.2:8080",
    ];

    private protected override void AssertAfterPartialSync(IServiceBackend b)
    {
        Assert.False(((NftablesServiceBackend)b).LastSyncWasFull);
        var table = Lab.Shell("nft", "list", "table", "ip", "kube-proxy");
        Assert.Contains("tcp . 30080 : goto external-", table, StringComparison.Ordinal);
    }
}
