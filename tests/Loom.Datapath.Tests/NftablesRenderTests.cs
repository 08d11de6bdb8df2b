using Loom.Core.Model;
using Loom.Datapath.Services;
using static Loom.Datapath.Tests.Fixtures;

namespace Loom.Datapath.Tests;

/// <summary>The rendered nft script against kube-proxy's own expectations (pkg/proxy/nftables/proxier_test.go).</summary>
public sealed class NftablesRenderTests
{
    private static string Render(IReadOnlyCollection<ServicePortState> desired, NftSnapshot? existing = null, bool setup = true, Func<ServicePortState, bool>? rewrite = null) =>
        NftablesRules.Render(desired, rewrite ?? (_ => true), existing ?? NftSnapshot.Missing, setup, KubeProxyTest);

    // kube-proxy's golden dump, except its "numgen random mod 1 vmap { 0 : goto endpoint-... }": a service with up to
    // MaxCascadeEndpoints endpoints picks one with a rule cascade instead of an anonymous set (see AppendEndpointChoice).
    [Fact]
    public void One_endpoint_service_matches_kube_proxys_golden_dump()
    {
        var golden = """
            add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
            add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
            add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80
            add chain ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80
            add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 ip saddr 10.180.0.1 jump mark-for-masquerade
            add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 meta l4proto tcp dnat to 10.180.0.1:80
            add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
            """;
        var svc1 = Port("ns1", "svc1", "p80", "172.30.0.41", 80, ["10.180.0.1"]);
        var script = Lines(Render([svc1]));
        foreach (var line in Lines(golden))
        {
            Assert.Contains(line, script);
        }
    }

    [Fact]
    public void Skeleton_is_kube_proxys()
    {
        var script = Lines(Render([]));
        Assert.Contains("add table ip kube-proxy { comment \"rules for kube-proxy\" ; }", script);
        Assert.Contains("add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }", script);
        Assert.Contains("add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }", script);
        Assert.Contains("add chain ip kube-proxy filter-output { type filter hook output priority -110 ; }", script);
        Assert.Contains("add rule ip kube-proxy filter-output ct state new jump service-endpoints-check", script);
        Assert.Contains("add rule ip kube-proxy nat-output jump services", script);
        Assert.Contains("add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips", script);
        Assert.Contains("add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services", script);
        Assert.Contains("add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000", script);
        Assert.Contains("add rule ip kube-proxy masquerading mark and 0x4000 == 0 return", script);
        Assert.Contains("add rule ip kube-proxy reject-chain reject", script);
    }

    [Fact]
    public void No_endpoints_goes_to_the_reject_map_with_the_service_name()
    {
        var script = Lines(Render([Port("ns2", "svc2", "p80", "172.30.0.42", 80, [])]));
        Assert.Contains("add element ip kube-proxy no-endpoint-services { 172.30.0.42 . tcp . 80 comment \"ns2/svc2:p80\" : goto reject-chain }", script);
        Assert.DoesNotContain(script, l => l.Contains("service-ips {", StringComparison.Ordinal) && l.StartsWith("add element", StringComparison.Ordinal));
    }

    [Fact]
    public void Affinity_uses_per_endpoint_timeout_sets()
    {
        var svc = Port("ns1", "svc1", "p80", "172.30.0.41", 80, ["10.180.0.1", "10.180.0.2"], affinity: SessionAffinity.ClientIP, timeout: 60);
        var script = Lines(Render([svc]));
        var set = KubeProxyNames.NftAffinitySet(svc.Name, "tcp", svc.Backends[0]);
        var ep = KubeProxyNames.NftEndpointChain(svc.Name, "tcp", svc.Backends[0]);
        Assert.Contains($"add set ip kube-proxy {set} {{ type ipv4_addr ; flags dynamic,timeout ; timeout 60s ; }}", script);
        Assert.Contains($"add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip saddr @{set} goto {ep}", script);
        Assert.Contains($"add rule ip kube-proxy {ep} update @{set} {{ ip saddr }}", script);
        // Affinity first, then the random choice.
        var choice = script.FindIndex(l => l.Contains("numgen random mod 2 0 goto endpoint-", StringComparison.Ordinal));
        Assert.True(choice > script.IndexOf($"add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip saddr @{set} goto {ep}"));
    }

    [Fact]
    public void A_few_endpoints_are_picked_by_a_numgen_cascade_and_many_by_one_vmap()
    {
        string[] three = ["10.180.0.1", "10.180.0.2", "10.180.0.3"];
        var svc = Port("ns1", "svc1", "p80", "172.30.0.41", 80, three);
        var chain = NftablesRules.ServiceChain(svc);
        var ep = svc.Backends.Select(b => NftablesRules.EndpointChain(svc, b)).ToList();
        var rules = Lines(Render([svc])).Where(l => l.StartsWith($"add rule ip kube-proxy {chain} ", StringComparison.Ordinal) && !l.Contains("mark-for-masquerade", StringComparison.Ordinal)).ToList();
        // 1/3, then 1/2 of the remaining 2/3, then the rest: each endpoint 1/3.
        Assert.Equal(
            [
                $"add rule ip kube-proxy {chain} numgen random mod 3 0 goto {ep[0]}",
                $"add rule ip kube-proxy {chain} numgen random mod 2 0 goto {ep[1]}",
                $"add rule ip kube-proxy {chain} goto {ep[2]}",
            ],
            rules);
        Assert.DoesNotContain(Lines(Render([svc])), l => l.Contains("vmap {", StringComparison.Ordinal));

        var many = Enumerable.Range(1, NftablesRules.MaxCascadeEndpoints + 1).Select(i => $"10.180.1.{i}").ToArray();
        var big = Port("ns1", "big", "p80", "172.30.0.42", 80, many);
        var bigRules = Lines(Render([big])).Where(l => l.Contains("numgen", StringComparison.Ordinal)).ToList();
        var vmap = Assert.Single(bigRules);
        Assert.StartsWith($"add rule ip kube-proxy {NftablesRules.ServiceChain(big)} numgen random mod {many.Length} vmap {{ 0 : goto endpoint-", vmap, StringComparison.Ordinal);
        Assert.Contains($" , {many.Length - 1} : goto {NftablesRules.EndpointChain(big, big.Backends[^1])} }}", vmap, StringComparison.Ordinal);
    }

    [Fact]
    public void An_incremental_sync_carries_only_what_changed()
    {
        var a = Port("ns1", "svc1", "p80", "172.30.0.41", 80, ["10.180.0.1"]);
        var b = Port("ns2", "svc2", "p80", "172.30.0.42", 80, ["10.180.0.2"]);
        var gone = Port("ns3", "svc3", "p80", "172.30.0.43", 80, ["10.180.0.3"]);
        var existing = NftSnapshot.Parse(KernelJson([a, b, gone]));
        var b2 = b with { Backends = [new BackendAddress(System.Net.IPAddress.Parse("10.180.0.9"), 80)] };
        var script = Render([a, b2], existing, setup: false, rewrite: s => s == b2);
        var lines = Lines(script);
        Assert.DoesNotContain(lines, l => l.Contains("add table", StringComparison.Ordinal) || l.Contains("ns1/svc1", StringComparison.Ordinal));
        Assert.Contains("flush chain ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80", lines);
        Assert.Contains(lines, l => l.StartsWith("delete chain ip kube-proxy endpoint-", StringComparison.Ordinal) && l.Contains("ns2/svc2/tcp/p80__10.180.0.2/80", StringComparison.Ordinal));
        Assert.Contains("delete element ip kube-proxy service-ips { 172.30.0.43 . tcp . 80 }", lines);
        Assert.Contains(lines, l => l.StartsWith("delete chain ip kube-proxy service-", StringComparison.Ordinal) && l.Contains("ns3/svc3", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("add element", StringComparison.Ordinal)); // b's element already points at its chain
        Assert.Contains("delete element ip kube-proxy no-endpoint-services { 10.96.0.50 . tcp . 80 }", lines);
        var same = Render([a, b, gone, Port("x", "x", null, "10.96.0.50", 80, [])], existing, setup: false, rewrite: _ => false);
        Assert.Empty(same);
    }

    // What `nft -j list table` returns once the given services are programmed (just the parts the snapshot reads).
    private static string KernelJson(IEnumerable<ServicePortState> services)
    {
        var items = new List<string> { "{\"table\": {\"family\": \"ip\", \"name\": \"kube-proxy\"}}" };
        var elems = new List<string>();
        foreach (var s in services)
        {
            items.AddRange(NftablesRules.ChainsOf(s).Select(c => $"{{\"chain\": {{\"name\": \"{c}\"}}}}"));
            elems.Add($"[{{\"concat\": [\"{s.Frontend.Address}\", \"tcp\", {s.Frontend.Port}]}}, {{\"goto\": {{\"target\": \"{NftablesRules.ServiceChain(s)}\"}}}}]");
        }

        items.Add($"{{\"map\": {{\"name\": \"service-ips\", \"elem\": [{string.Join(", ", elems)}]}}}}");
        items.Add("{\"map\": {\"name\": \"no-endpoint-services\", \"elem\": [[{\"elem\": {\"val\": {\"concat\": [\"10.96.0.50\", \"tcp\", 80]}, \"comment\": \"x\"}}, {\"goto\": {\"target\": \"reject-chain\"}}]]}}");
        return $"{{\"nftables\": [{string.Join(", ", items)}]}}";
    }

    [Fact]
    public void Elements_go_in_one_command_per_map_and_new_chains_are_not_flushed()
    {
        var a = Port("ns1", "svc1", "p80", "172.30.0.41", 80, ["10.180.0.1"]);
        var b = Port("ns2", "svc2", "p80", "172.30.0.42", 80, ["10.180.0.2"]);
        var lines = Lines(Render([a, b]));
        Assert.Contains("add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80, 172.30.0.42 . tcp . 80 : goto service-42NFTM6N-ns2/svc2/tcp/p80 }", lines);
        Assert.Single(lines, l => l.StartsWith("add element", StringComparison.Ordinal));
        Assert.DoesNotContain("flush chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80", lines);
    }
}
