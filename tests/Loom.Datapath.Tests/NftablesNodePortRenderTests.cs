using System.Net;
using Loom.Core.Model;
using Loom.Datapath.Services;
using static Loom.Datapath.Tests.Fixtures;

namespace Loom.Datapath.Tests;

/// <summary>Node ports, external IPs and traffic policies in the nft script, against kube-proxy's nftables proxier_test.go.</summary>
public sealed class NftablesNodePortRenderTests
{
    private static readonly string[] Maps = ["service-ips", "no-endpoint-services", "service-nodeports", "no-endpoint-nodeports"];

    private static string Render(IReadOnlyCollection<ServicePortState> desired, ServiceProxyOptions? o = null, NftSnapshot? existing = null, bool setup = true) =>
        NftablesRules.Render(desired, _ => true, existing ?? NftSnapshot.Missing, setup, o ?? KubeProxyTest);

    // TestOverallNFTablesRules' services with node ports, external IPs or none, less the load-balancer IPs.
    private static ServicePortState[] OverallServices() =>
    [
        Port("ns2", "svc2", "p80", "172.30.0.42", 80, ["10.180.0.2"]) with
        {
            Type = ServiceType.LoadBalancer, NodePort = 3001, ExternalIps = [IPAddress.Parse("192.168.99.22")],
            ExternalTrafficPolicy = TrafficPolicy.Local, HealthCheckNodePort = 30000,
        },
        Port("ns3", "svc3", "p80", "172.30.0.43", 80, ["10.180.0.3"]) with { Type = ServiceType.NodePort, NodePort = 3003 },
        Port("ns4", "svc4", "p80", "172.30.0.44", 80, ["10.180.0.4", "10.180.0.5"]) with { ExternalIps = [IPAddress.Parse("192.168.99.33")] },
        Port("ns6", "svc6", "p80", "172.30.0.46", 80, []),
    ];

    [Fact]
    public void External_chains_and_elements_match_kube_proxys_overall_golden_dump()
    {
        var lines = Lines(Render(OverallServices()));
        foreach (var rule in new[]
                 {
                     "add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 ip saddr 10.0.0.0/8 goto service-42NFTM6N-ns2/svc2/tcp/p80 comment \"short-circuit pod traffic\"",
                     "add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local jump mark-for-masquerade comment \"masquerade local traffic\"",
                     "add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local goto service-42NFTM6N-ns2/svc2/tcp/p80 comment \"short-circuit local traffic\"",
                     "add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 jump mark-for-masquerade",
                     "add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 goto service-4AT6LBPK-ns3/svc3/tcp/p80",
                     "add rule ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80 jump mark-for-masquerade",
                     "add rule ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80 goto service-LAUZTJTB-ns4/svc4/tcp/p80",
                     "add chain ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80",
                 })
        {
            Assert.Contains(rule, lines);
        }

        // svc2 has no local endpoint: its external chain ends without a policy jump and no local- chain exists.
        Assert.Equal(3, lines.Count(l => l.StartsWith("add rule ip kube-proxy external-42NFTM6N-", StringComparison.Ordinal)));
        Assert.DoesNotContain(lines, l => l.Contains(" local-", StringComparison.Ordinal));

        // kube-proxy writes one element per command; Loom one command per map: compare the elements.
        var elements = Elements(lines);
        Assert.Equal(
            [
                "172.30.0.42 . tcp . 80 : goto service-42NFTM6N-ns2/svc2/tcp/p80",
                "172.30.0.43 . tcp . 80 : goto service-4AT6LBPK-ns3/svc3/tcp/p80",
                "172.30.0.44 . tcp . 80 : goto service-LAUZTJTB-ns4/svc4/tcp/p80",
                "192.168.99.22 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80",
                "192.168.99.33 . tcp . 80 : goto external-LAUZTJTB-ns4/svc4/tcp/p80",
            ],
            elements["service-ips"].Order(StringComparer.Ordinal));
        Assert.Equal(
            ["tcp . 3001 : goto external-42NFTM6N-ns2/svc2/tcp/p80", "tcp . 3003 : goto external-4AT6LBPK-ns3/svc3/tcp/p80"],
            elements["service-nodeports"].Order(StringComparer.Ordinal));
        Assert.Equal(["tcp . 3001 comment \"ns2/svc2:p80\" : drop"], elements["no-endpoint-nodeports"]);
        Assert.Equal(
            ["172.30.0.46 . tcp . 80 comment \"ns6/svc6:p80\" : goto reject-chain", "192.168.99.22 . tcp . 80 comment \"ns2/svc2:p80\" : drop"],
            elements["no-endpoint-services"].Order(StringComparer.Ordinal));
    }

    [Fact]
    public void The_setup_dispatches_node_ports_on_every_local_address_or_on_the_node_port_addresses()
    {
        var all = Lines(Render([]));
        Assert.Contains("add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment \"NodePort traffic\" ; }", all);
        Assert.Contains("add rule ip kube-proxy services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports", all);
        Assert.Contains("add rule ip kube-proxy nodeport-endpoints-check ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports", all);
        Assert.Contains("add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check", all);
        Assert.Contains("delete set ip kube-proxy nodeport-ips", all);

        var o = KubeProxyTest with { NodePortAddresses = [IPNetwork.Parse("192.168.10.0/24")], NodeIps = [IPAddress.Parse("192.168.10.11"), IPAddress.Parse("172.18.0.2")] };
        var some = Lines(Render([], o));
        Assert.Contains("add element ip kube-proxy nodeport-ips { 192.168.10.11 }", some);
        Assert.Contains("add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports", some);
        Assert.Contains("add rule ip kube-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports", some);
        Assert.DoesNotContain(some, l => l.Contains("fib daddr", StringComparison.Ordinal) || l.StartsWith("delete set", StringComparison.Ordinal));
    }

    [Fact]
    public void Local_policies_use_the_local_chain()
    {
        var local = new BackendAddress(IPAddress.Parse("10.180.0.1"), 80) { IsLocal = true };
        var remote = new BackendAddress(IPAddress.Parse("10.180.0.2"), 80);
        var etp = Port("ns2", "svc2", "p80", "172.30.0.42", 80, []) with
        {
            Type = ServiceType.NodePort, NodePort = 3001, ExternalTrafficPolicy = TrafficPolicy.Local, Backends = [local, remote],
        };
        var lines = Lines(Render([etp]));
        var localChain = KubeProxyNames.NftLocalChain(etp.Name, "tcp");
        Assert.Equal("local-42NFTM6N-ns2/svc2/tcp/p80", localChain);
        Assert.Contains($"add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 goto {localChain}", lines);
        Assert.Equal(
            [$"add rule ip kube-proxy {localChain} goto {NftablesRules.EndpointChain(etp, local)}"],
            lines.Where(l => l.StartsWith($"add rule ip kube-proxy {localChain} ", StringComparison.Ordinal)));
        Assert.Empty(Elements(lines)["no-endpoint-nodeports"]);

        // internalTrafficPolicy Local: the ClusterIP goes to the local chain, which takes the masquerade rule.
        var itp = Port("ns1", "svc1", "p80", "172.30.0.41", 80, []) with { InternalTrafficPolicy = TrafficPolicy.Local, Backends = [local, remote] };
        var itpLines = Lines(Render([itp]));
        Assert.Equal(["172.30.0.41 . tcp . 80 : goto local-ULMVA6XW-ns1/svc1/tcp/p80"], Elements(itpLines)["service-ips"]);
        Assert.Contains("add rule ip kube-proxy local-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade", itpLines);
        Assert.DoesNotContain(itpLines, l => l.Contains("service-ULMVA6XW", StringComparison.Ordinal) || l.Contains("10.180.0.2", StringComparison.Ordinal));
        var none = Elements(Lines(Render([itp with { Backends = [remote] }])));
        Assert.Equal(["172.30.0.41 . tcp . 80 comment \"ns1/svc1:p80\" : drop"], none["no-endpoint-services"]);
        Assert.Empty(none["service-ips"]);
    }

    [Fact]
    public void A_node_port_change_is_an_element_diff()
    {
        var all = OverallServices();

        // What the kernel holds after the first sync, as the backend rebuilds it from what it applied.
        var applied = NftSnapshot.Known();
        foreach (var (map, elements) in NftablesRules.Elements(all, s => new NftNames(s)))
        {
            applied.Maps[map] = elements.ToDictionary(e => e.Key, e => e.Value.Verdict, StringComparer.Ordinal);
        }

        foreach (var s in all)
        {
            applied.Chains.UnionWith(new NftNames(s).Chains);
        }

        var moved = all.Select(s => s.Name.Name == "svc3" ? s with { NodePort = 3005 } : s).ToList();
        var lines = Lines(NftablesRules.Render(moved, s => s.Name.Name == "svc3", applied, false, KubeProxyTest));
        Assert.Contains("delete element ip kube-proxy service-nodeports { tcp . 3003 }", lines);
        Assert.Contains("add element ip kube-proxy service-nodeports { tcp . 3005 : goto external-4AT6LBPK-ns3/svc3/tcp/p80 }", lines);
        Assert.DoesNotContain(lines, l => l.Contains("delete chain", StringComparison.Ordinal) || l.Contains("svc2", StringComparison.Ordinal));
    }

    // The elements of every "add element" command, per map (the command lists them separated by ", ").
    private static Dictionary<string, List<string>> Elements(List<string> lines)
    {
        var maps = Maps.ToDictionary(m => m, _ => new List<string>());
        foreach (var l in lines.Where(l => l.StartsWith("add element ip kube-proxy ", StringComparison.Ordinal)))
        {
            var rest = l["add element ip kube-proxy ".Length..];
            var map = rest[..rest.IndexOf(' ', StringComparison.Ordinal)];
            if (maps.TryGetValue(map, out var list))
            {
                list.AddRange(rest[(rest.IndexOf('{', StringComparison.Ordinal) + 2)..^2].Split(", "));
            }
        }

        return maps;
    }
}
