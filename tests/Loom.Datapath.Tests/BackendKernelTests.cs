using System.Net;
using Loom.Core.Model;
using Loom.Datapath.Services;
using static Loom.Datapath.Tests.ServiceLab;

namespace Loom.Datapath.Tests;

/// <summary>
/// The same real-kernel behaviour demanded of every backend: rules applied inside a test namespace, real TCP/UDP from
/// the node namespace to a ClusterIP reaching pods in their own namespaces.
/// </summary>
public abstract class BackendKernelTests : IDisposable
{
    private static readonly IPAddress WebIp = IPAddress.Parse("10.96.0.100");

    private protected BackendKernelTests() => Lab = new ServiceLab(2, 80, 53);

    private protected ServiceLab Lab { get; }

    public void Dispose()
    {
        Lab.Dispose();
        GC.SuppressFinalize(this);
    }

    private protected abstract IServiceBackend NewBackend();

    /// <summary>Everything the backend's tool shows in the node namespace (iptables-save or nft list ruleset).</summary>
    private protected abstract string Dump();

    private protected void Sync(IServiceBackend b, params ServicePortState[] desired) => Lab.InNode(() => b.Sync(desired));

    [Fact]
    public void Connections_to_the_cluster_ip_reach_both_pods()
    {
        var b = NewBackend();
        Sync(b, Service("webpod", "10.96.0.100", 80, [1, 2]));
        var seen = Lab.TcpMany(WebIp, 80, 40).ToHashSet();
        Assert.Equal(["pod1", "pod2"], seen.Order());
    }

    [Fact]
    public void A_removed_endpoint_gets_no_more_connections()
    {
        var b = NewBackend();
        Sync(b, Service("webpod", "10.96.0.100", 80, [1, 2]));
        Sync(b, Service("webpod", "10.96.0.100", 80, [2]));
        Assert.All(Lab.TcpMany(WebIp, 80, 20), a => Assert.Equal("pod2", a));
    }

    [Fact]
    public void A_service_without_endpoints_is_refused_at_once()
    {
        var b = NewBackend();
        Sync(b, Service("webpod", "10.96.0.100", 80, [1]), Service("empty", "10.96.0.50", 80, []));
        var (outcome, elapsed) = Lab.TcpOutcome(IPAddress.Parse("10.96.0.50"), 80);
        Assert.Equal("refused", outcome);
        Assert.True(elapsed < TimeSpan.FromSeconds(1), $"took {elapsed}");
        Assert.Equal("pod1", Lab.Tcp(WebIp, 80));
    }

    [Fact]
    public void Udp_services_work()
    {
        var b = NewBackend();
        Sync(b, Service("dns", "10.96.0.10", 53, [2], Protocol.Udp));
        Assert.Equal("pod2", Lab.Udp(IPAddress.Parse("10.96.0.10"), 53));
    }

    [Fact]
    public void Client_ip_affinity_sticks_to_one_pod()
    {
        var b = NewBackend();
        Sync(b, Service("webpod", "10.96.0.100", 80, [1, 2], affinity: SessionAffinity.ClientIP));
        Assert.Single(Lab.TcpMany(WebIp, 80, 20).Distinct());
    }

    [Fact]
    public void Repeated_syncs_change_nothing()
    {
        var b = NewBackend();
        var desired = new[] { Service("webpod", "10.96.0.100", 80, [1, 2]), Service("empty", "10.96.0.50", 80, []) };
        Sync(b, desired);
        var first = Dump();
        Sync(b, desired);
        Assert.Equal(first, Dump());
    }

    [Fact]
    public void A_restarted_backend_adopts_the_rules_and_drops_what_is_gone()
    {
        var before = NewBackend();
        Sync(before, Service("webpod", "10.96.0.100", 80, [1, 2]), Service("old", "10.96.0.77", 80, [1]));
        var after = NewBackend();
        Sync(after, Service("webpod", "10.96.0.100", 80, [1, 2]));
        var dump = Dump();
        Assert.DoesNotContain("default/old", dump, StringComparison.Ordinal);
        Assert.DoesNotContain("10.96.0.77", dump, StringComparison.Ordinal);
        Assert.Equal(["pod1", "pod2"], Lab.TcpMany(WebIp, 80, 40).ToHashSet().Order());
    }

    [Fact]
    public void Flush_leaves_nothing_of_ours()
    {
        var b = NewBackend();
        Sync(b, Service("webpod", "10.96.0.100", 80, [1, 2]), Service("empty", "10.96.0.50", 80, []));
        Lab.InNode(b.Flush);
        AssertClean(Dump());
        Lab.InNode(b.Flush); // idempotent
        Assert.Equal("timeout", Lab.TcpOutcome(WebIp, 80, 500).Outcome);
    }

    [Fact]
    public void Explain_shows_the_programmed_rules()
    {
        var b = NewBackend();
        var web = Service("webpod", "10.96.0.100", 80, [1, 2]);
        var empty = Service("empty", "10.96.0.50", 80, []);
        Sync(b, web, empty);
        var text = Lab.InNode(() => b.Explain(web));
        Assert.Contains("10.244.1.2:80", text, StringComparison.Ordinal);
        Assert.Contains("10.244.2.2:80", text, StringComparison.Ordinal);
        Assert.Contains("10.96.0.100", text, StringComparison.Ordinal);
        Assert.DoesNotContain("10.96.0.50", text, StringComparison.Ordinal);
        Assert.Contains("10.96.0.50", Lab.InNode(() => b.Explain(empty)), StringComparison.Ordinal);
    }

    private protected abstract void AssertClean(string dump);
}
