using System.Net;
using Loom.Datapath.Services;
using static Loom.Datapath.Tests.ServiceLab;

namespace Loom.Datapath.Tests;

public sealed class NftablesKernelTests : BackendKernelTests
{
    private protected override IServiceBackend NewBackend() => new NftablesServiceBackend(new ServiceProxyOptions()) { KeepLastInput = true };

    private protected override string Dump() => Lab.Shell("nft", "list", "ruleset");

    private protected override void AssertClean(string dump) => Assert.DoesNotContain("kube-proxy", dump, StringComparison.Ordinal);

    [Fact]
    public void Nft_lists_kube_proxys_layout()
    {
        var b = NewBackend();
        var web = Service("webpod", "10.96.0.100", 80, [1, 2]);
        Sync(b, web, Service("empty", "10.96.0.50", 80, []));
        var table = Lab.Shell("nft", "list", "table", "ip", "kube-proxy");
        var svc = KubeProxyNames.NftServiceChain(web.Name, "tcp");
        Assert.Contains($"10.96.0.100 . tcp . 80 : goto {svc}", table, StringComparison.Ordinal);
        Assert.Contains("10.96.0.50 . tcp . 80 comment \"default/empty\" : goto reject-chain", table, StringComparison.Ordinal);
        Assert.Contains($"chain {svc} {{", table, StringComparison.Ordinal);
        Assert.Contains("numgen random mod 2 0 goto endpoint-", table, StringComparison.Ordinal);
        Assert.Contains("meta l4proto tcp dnat to 10.244.1.2:80", table, StringComparison.Ordinal);
        Assert.Contains("ip daddr . meta l4proto . th dport vmap @service-ips", table, StringComparison.Ordinal);
    }

    [Fact]
    public void The_numgen_cascade_spreads_connections_evenly()
    {
        // Three endpoints, two of them pod2 (its ports 80 and 53): pod1 should get a third of the connections. A
        // cascade in the wrong order (mod 2 first) would give pod1 half, a missing step all or nothing.
        var web = Service("webpod", "10.96.0.100", 80, [1, 2]) with
        {
            Backends = [new(PodIp(1), 80), new(PodIp(2), 80), new(PodIp(2), 53)],
        };
        Sync(NewBackend(), web);
        var answers = Lab.TcpMany(IPAddress.Parse("10.96.0.100"), 80, 600);
        var pod1 = answers.Count(a => a == "pod1");
        Assert.InRange(pod1, 155, 245); // mean 200, sd 11.5 (with pod1 at half: mean 300, sd 12.2)
        Assert.Equal(600 - pod1, answers.Count(a => a == "pod2"));
    }

    [Fact]
    public void A_service_with_many_endpoints_keeps_kube_proxys_vmap()
    {
        var backends = Enumerable.Range(1, NftablesRules.MaxCascadeEndpoints + 1).Select(i => new BackendAddress(IPAddress.Parse($"10.244.100.{i}"), 80)).ToList();
        var big = Service("big", "10.96.0.102", 80, []) with { Backends = backends };
        Sync(NewBackend(), Service("webpod", "10.96.0.100", 80, [1, 2]), big);
        var table = Lab.Shell("nft", "list", "table", "ip", "kube-proxy");
        Assert.Contains($"numgen random mod {backends.Count} vmap {{ 0 : goto endpoint-", table, StringComparison.Ordinal);
        Assert.Equal(["pod1", "pod2"], Lab.TcpMany(IPAddress.Parse("10.96.0.100"), 80, 40).ToHashSet().Order());
    }

    [Fact]
    public void A_restart_rewrites_an_older_runs_vmap_choice_as_the_cascade()
    {
        var web = Service("webpod", "10.96.0.100", 80, [1, 2]);
        Sync(NewBackend(), web);
        var svc = KubeProxyNames.NftServiceChain(web.Name, "tcp");
        var ep = web.Backends.Select(b => KubeProxyNames.NftEndpointChain(web.Name, "tcp", b)).ToList();
        // What a run before the cascade (or kube-proxy itself) left: the choice as an inline vmap.
        Lab.Shell("nft", "flush", "chain", "ip", "kube-proxy", svc);
        Lab.Shell("nft", "add", "rule", "ip", "kube-proxy", svc, "numgen", "random", "mod", "2", "vmap", "{", "0", ":", "goto", ep[0], ",", "1", ":", "goto", ep[1], "}");
        Assert.Contains("vmap { 0 : goto", Lab.Shell("nft", "list", "chain", "ip", "kube-proxy", svc), StringComparison.Ordinal);
        Sync(NewBackend(), web);
        var chain = Lab.Shell("nft", "list", "chain", "ip", "kube-proxy", svc);
        Assert.DoesNotContain("vmap", chain, StringComparison.Ordinal);
        Assert.Contains($"numgen random mod 2 0 goto {ep[0]}", chain, StringComparison.Ordinal);
        Assert.Equal(["pod1", "pod2"], Lab.TcpMany(IPAddress.Parse("10.96.0.100"), 80, 40).ToHashSet().Order());
    }

    [Fact]
    public void A_change_carries_only_the_changed_elements_and_chains()
    {
        var b = (NftablesServiceBackend)NewBackend();
        var web = Service("webpod", "10.96.0.100", 80, [1, 2]);
        Sync(b, web, Service("other", "10.96.0.101", 80, [1]));
        Sync(b, web, Service("other", "10.96.0.101", 80, [1]));
        Assert.Equal(string.Empty, b.LastScript);
        Sync(b, web, Service("other", "10.96.0.101", 80, [2]));
        var script = b.LastScript!;
        Assert.DoesNotContain("add table", script, StringComparison.Ordinal);
        Assert.DoesNotContain("webpod", script, StringComparison.Ordinal);
        Assert.Contains("default/other/tcp/__10.244.2.2/80", script, StringComparison.Ordinal);
        Assert.Contains("delete chain", script, StringComparison.Ordinal);
        Assert.All(Lab.TcpMany(IPAddress.Parse("10.96.0.101"), 80, 10), a => Assert.Equal("pod2", a));
        Sync(b, web);
        Assert.Contains("delete element ip kube-proxy service-ips { 10.96.0.101 . tcp . 80 }", b.LastScript, StringComparison.Ordinal);
        Assert.Equal("timeout", Lab.TcpOutcome(IPAddress.Parse("10.96.0.101"), 80, 500).Outcome);
    }

    [Fact]
    public void Affinity_survives_a_resync_and_follows_a_timeout_change()
    {
        var b = NewBackend();
        var sticky = Service("webpod", "10.96.0.100", 80, [1, 2], affinity: Loom.Core.Model.SessionAffinity.ClientIP);
        Sync(b, sticky);
        var first = Lab.Tcp(IPAddress.Parse("10.96.0.100"), 80);
        Sync(NewBackend(), sticky); // a restarted agent re-declares the sets; the remembered clients stay
        Assert.All(Lab.TcpMany(IPAddress.Parse("10.96.0.100"), 80, 10), a => Assert.Equal(first, a));
        Sync(b, sticky with { AffinityTimeoutSeconds = 60 });
        Assert.Contains("timeout 1m", Lab.Shell("nft", "list", "table", "ip", "kube-proxy"), StringComparison.Ordinal);
        Assert.Single(Lab.TcpMany(IPAddress.Parse("10.96.0.100"), 80, 10).Distinct());
    }

    [Fact]
    public void A_failed_sync_makes_the_next_one_read_the_kernel_again()
    {
        var b = (NftablesServiceBackend)NewBackend();
        var web = Service("webpod", "10.96.0.100", 80, [1, 2]);
        Sync(b, web, Service("other", "10.96.0.101", 80, [1]));
        Assert.True(b.LastSyncWasFull);
        Sync(b, web, Service("other", "10.96.0.101", 80, [2]));
        Assert.False(b.LastSyncWasFull); // partial: nothing listed, only other's chains written
        Lab.Shell("nft", "delete", "table", "ip", "kube-proxy"); // someone else removes the table behind our back
        Assert.ThrowsAny<Exception>(() => Sync(b, web, Service("other", "10.96.0.101", 80, [1])));
        Sync(b, web, Service("other", "10.96.0.101", 80, [1]));
        Assert.True(b.LastSyncWasFull);
        Assert.Equal(["pod1", "pod2"], Lab.TcpMany(IPAddress.Parse("10.96.0.100"), 80, 40).ToHashSet().Order());
        Assert.All(Lab.TcpMany(IPAddress.Parse("10.96.0.101"), 80, 10), a => Assert.Equal("pod1", a));
    }
}
