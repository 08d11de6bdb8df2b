using Loom.Core.Model;
using Loom.Datapath.Services;
using static Loom.Datapath.Tests.Fixtures;

namespace Loom.Datapath.Tests;

/// <summary>The rendered restore input against kube-proxy's own expectations (pkg/proxy/iptables/proxier_test.go).</summary>
public sealed class IptablesRenderTests
{
    private static string Render(IReadOnlyCollection<ServicePortState> desired, ServiceProxyOptions? o = null, string nat = "") =>
        IptablesRules.Render(desired, IptablesSnapshot.Empty, IptablesSnapshot.Parse(nat), o ?? KubeProxyTest);

    [Fact]
    public void Two_endpoint_service_matches_kube_proxys_golden_dump()
    {
        // proxier_test.go TestSyncProxyRulesRepeated, after "Add an endpoint to a service".
        var golden = """
            :KUBE-SERVICES - [0:0]
            :KUBE-NODEPORTS - [0:0]
            :KUBE-POSTROUTING - [0:0]
            :KUBE-MARK-MASQ - [0:0]
            :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
            :KUBE-SEP-DKCFIS26GWF2WLWC - [0:0]
            :KUBE-SEP-JVVZVJ7BSEPPRNBS - [0:0]
            -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
            -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS
            -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
            -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
            -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
            -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
            -A KUBE-SEP-DKCFIS26GWF2WLWC -m comment --comment ns3/svc3:p80 -s 10.0.3.2 -j KUBE-MARK-MASQ
            -A KUBE-SEP-DKCFIS26GWF2WLWC -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.3.2:80
            -A KUBE-SEP-JVVZVJ7BSEPPRNBS -m comment --comment ns3/svc3:p80 -s 10.0.3.3 -j KUBE-MARK-MASQ
            -A KUBE-SEP-JVVZVJ7BSEPPRNBS -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.3.3:80
            -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
            -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.0.3.2:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-DKCFIS26GWF2WLWC
            -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.0.3.3:80" -j KUBE-SEP-JVVZVJ7BSEPPRNBS
            """;
        var svc3 = Port("ns3", "svc3", "p80", "172.30.0.43", 80, ["10.0.3.2", "10.0.3.3"]);
        var nat = Table(Render([svc3]), "nat").Where(l => !l.StartsWith("-I ", StringComparison.Ordinal));
        Assert.Equal(Lines(golden).Order(StringComparer.Ordinal), nat.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Client_ip_affinity_matches_kube_proxys_golden_dump()
    {
        // proxier_test.go: ns1/svc1 (unnamed port) with sessionAffinity ClientIP over three endpoints.
        var golden = """
            -A KUBE-SEP-IO5XOSKPAXIFQXAJ -m comment --comment ns1/svc1 -s 10.0.1.2 -j KUBE-MARK-MASQ
            -A KUBE-SEP-IO5XOSKPAXIFQXAJ -m comment --comment ns1/svc1 -m recent --name KUBE-SEP-IO5XOSKPAXIFQXAJ --set -m tcp -p tcp -j DNAT --to-destination 10.0.1.2:80
            -A KUBE-SEP-EQCHZ7S2PJ72OHAY -m comment --comment ns1/svc1 -m recent --name KUBE-SEP-EQCHZ7S2PJ72OHAY --set -m tcp -p tcp -j DNAT --to-destination 10.0.1.5:80
            -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 cluster IP" -m tcp -p tcp -d 172.30.1.1 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
            -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.1:80" -m recent --name KUBE-SEP-3JOIVZTXZZRGORX4 --rcheck --seconds 10800 --reap -j KUBE-SEP-3JOIVZTXZZRGORX4
            -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.2:80" -m recent --name KUBE-SEP-IO5XOSKPAXIFQXAJ --rcheck --seconds 10800 --reap -j KUBE-SEP-IO5XOSKPAXIFQXAJ
            -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.5:80" -m recent --name KUBE-SEP-EQCHZ7S2PJ72OHAY --rcheck --seconds 10800 --reap -j KUBE-SEP-EQCHZ7S2PJ72OHAY
            -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.1:80" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-3JOIVZTXZZRGORX4
            -A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.2:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-IO5XOSKPAXIFQXAJ
            """;
        var svc = Port("ns1", "svc1", null, "172.30.1.1", 80, ["10.0.1.1", "10.0.1.2", "10.0.1.5"], affinity: SessionAffinity.ClientIP);
        var nat = Table(Render([svc]), "nat");
        foreach (var line in Lines(golden))
        {
            Assert.Contains(line, nat);
        }

        // Affinity checks come before the random cascade.
        Assert.True(nat.FindLastIndex(l => l.Contains("--rcheck", StringComparison.Ordinal)) < nat.FindIndex(l => l.Contains("statistic", StringComparison.Ordinal)));
    }

    [Fact]
    public void Service_without_endpoints_gets_only_the_filter_reject()
    {
        // proxier_test.go: "ns4/svc4:p80 has no endpoints".
        var svc4 = Port("ns4", "svc4", "p80", "172.30.0.44", 80, []);
        var text = Render([svc4]);
        Assert.Contains("-A KUBE-SERVICES -m comment --comment \"ns4/svc4:p80 has no endpoints\" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j REJECT", Table(text, "filter"));
        Assert.DoesNotContain(Table(text, "nat"), l => l.Contains("svc4", StringComparison.Ordinal));
    }

    [Fact]
    public void Probabilities_are_one_over_the_endpoints_left()
    {
        Assert.Equal("0.5000000000", IptablesRules.Probability(2));
        Assert.Equal("0.3333333333", IptablesRules.Probability(3));
        Assert.Equal("0.2500000000", IptablesRules.Probability(4));
        Assert.Equal("0.1428571429", IptablesRules.Probability(7));
        var svc = Port("ns", "four", null, "10.96.0.4", 80, ["10.244.0.1", "10.244.0.2", "10.244.0.3", "10.244.0.4"]);
        var svcRules = Table(Render([svc]), "nat").Where(l => l.StartsWith("-A KUBE-SVC-", StringComparison.Ordinal) && l.Contains(" -> ", StringComparison.Ordinal)).ToList();
        Assert.Equal(4, svcRules.Count);
        Assert.Contains("--probability 0.2500000000", svcRules[0], StringComparison.Ordinal);
        Assert.Contains("--probability 0.3333333333", svcRules[1], StringComparison.Ordinal);
        Assert.Contains("--probability 0.5000000000", svcRules[2], StringComparison.Ordinal);
        Assert.DoesNotContain("statistic", svcRules[3], StringComparison.Ordinal);
    }

    [Fact]
    public void Webpod_renders_the_scenarios_rules()
    {
        var text = Render([Webpod()], new ServiceProxyOptions());
        var nat = Table(text, "nat");
        var svc = KubeProxyNames.IptablesServiceChain(new ServicePortName("default", "webpod", null), "tcp");
        Assert.Contains($"-A KUBE-SERVICES -m comment --comment \"default/webpod cluster IP\" -m tcp -p tcp -d 10.96.0.100 --dport 80 -j {svc}", nat);
        Assert.Contains($"-A {svc} -m comment --comment \"default/webpod cluster IP\" -m tcp -p tcp -d 10.96.0.100 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ", nat);
        Assert.Contains(nat, l => l.StartsWith($"-A {svc} -m comment --comment \"default/webpod -> 10.244.1.2:80\" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-", StringComparison.Ordinal));
        Assert.Contains(nat, l => l.StartsWith($"-A {svc} -m comment --comment \"default/webpod -> 10.244.2.2:80\" -j KUBE-SEP-", StringComparison.Ordinal));
        Assert.Contains("-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully", nat);
        // Hook jumps are inserted at the top when missing, in both tables.
        Assert.Contains("-I PREROUTING 1 -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES", nat);
        Assert.Contains("-I OUTPUT 1 -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES", nat);
        Assert.Contains("-I POSTROUTING 1 -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING", nat);
        Assert.Contains("-I OUTPUT 1 -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES", Table(text, "filter"));
    }

    [Fact]
    public void Full_sync_rewrites_every_service_and_deletes_chains_no_service_owns()
    {
        // What the kernel holds (read by iptables-save): a's chains and those of a service that went.
        var a = Port("ns1", "svc1", "p80", "172.30.0.41", 80, ["10.0.1.1"]);
        var b = Port("ns3", "svc3", "p80", "172.30.0.43", 80, ["10.0.3.2"]);
        var gone = Port("ns2", "svc2", "p8080", "172.30.0.42", 8080, ["10.0.2.1"]);
        var existing = string.Join('\n', new[] { a, gone }.SelectMany(IptablesRules.ChainsOf).Select(c => $":{c} - [0:0]"));
        var nat = Table(Render([a, b], nat: existing), "nat");

        Assert.Contains(":KUBE-SERVICES - [0:0]", nat); // flushed and rewritten whole
        Assert.Equal(3, nat.Count(l => l.StartsWith("-A KUBE-SERVICES ", StringComparison.Ordinal))); // two jumps, the node-port tail
        Assert.Contains(":KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]", nat);
        Assert.Contains(":KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]", nat);
        Assert.Contains(":KUBE-SVC-2VJB64SDSIJUP5T6 - [0:0]", nat);
        Assert.Contains("-X KUBE-SVC-2VJB64SDSIJUP5T6", nat);
        Assert.Contains("-X KUBE-SEP-UHEGFW77JX3KXTOV", nat);
        Assert.DoesNotContain("-X KUBE-SVC-XPGD46QRK7WJZT7O", nat);
    }

    [Fact]
    public void Udp_services_match_udp()
    {
        var dns = Port("kube-system", "kube-dns", "dns", "10.96.0.10", 53, ["10.244.1.5"], protocol: Protocol.Udp);
        var nat = Table(Render([dns]), "nat");
        Assert.Contains("-A KUBE-SERVICES -m comment --comment \"kube-system/kube-dns:dns cluster IP\" -m udp -p udp -d 10.96.0.10 --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU", nat);
        Assert.Contains(nat, l => l.EndsWith("-m udp -p udp -j DNAT --to-destination 10.244.1.5:53", StringComparison.Ordinal));
    }

    [Fact]
    public void Flush_removes_jumps_and_every_owned_chain_but_nothing_else()
    {
        var nat = IptablesSnapshot.Parse("""
            *nat
            :PREROUTING ACCEPT [0:0]
            :KUBE-SERVICES - [0:0]
            :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
            :CNI-abc - [0:0]
            -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
            -A POSTROUTING -s 10.244.0.5/32 -j CNI-abc
            COMMIT
            """);
        var text = IptablesRules.RenderFlush(IptablesSnapshot.Empty, nat)!;
        Assert.Contains("-D PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES", text, StringComparison.Ordinal);
        Assert.Contains("-X KUBE-SVC-X27LE4BHSL4DOUIK", text, StringComparison.Ordinal);
        Assert.DoesNotContain("CNI-abc", text, StringComparison.Ordinal);
        Assert.DoesNotContain("*filter", text, StringComparison.Ordinal);
        Assert.Null(IptablesRules.RenderFlush(IptablesSnapshot.Empty, IptablesSnapshot.Empty));
    }

    [Fact]
    public void Service_chains_are_declared_in_name_order()
    {
        // iptables-nft restores thousands of chains far faster when they come sorted; the order changes nothing else.
        var services = Enumerable.Range(1, 20).Select(i => Port("ns", $"svc{i}", null, $"10.96.0.{i}", 80, [$"10.244.0.{i}", $"10.244.1.{i}"])).ToList();
        var declared = Table(Render(services), "nat").Where(l => l.StartsWith(":KUBE-S", StringComparison.Ordinal) && l != ":KUBE-SERVICES - [0:0]").ToList();
        Assert.Equal(60, declared.Count);
        Assert.Equal(declared.Order(StringComparer.Ordinal), declared);
    }
}
