using System.Net;
using Loom.Core.Model;
using Loom.Datapath.Services;
using static Loom.Datapath.Tests.Fixtures;

namespace Loom.Datapath.Tests;

/// <summary>Node ports, external IPs and traffic policies in the restore input, against kube-proxy's proxier_test.go.</summary>
public sealed class IptablesNodePortRenderTests
{
    private const string NodePortsJump = "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS";

    private static string Render(IReadOnlyCollection<ServicePortState> desired, ServiceProxyOptions? o = null) =>
        IptablesRules.Render(desired, IptablesSnapshot.Empty, IptablesSnapshot.Empty, o ?? KubeProxyTest);

    private static List<string> Rules(string restore, string table) =>
        Table(restore, table).Where(l => l.StartsWith("-A ", StringComparison.Ordinal)).ToList();

    // proxier_test.go TestOverallIPTablesRules' services, less the load-balancer ones (Loom has no LB IPs).
    private static ServicePortState[] OverallServices() =>
    [
        Port("ns1", "svc1", "p80", "172.30.0.41", 80, ["10.180.0.1"]),
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
    public void Node_ports_external_ips_and_local_policy_match_kube_proxys_overall_golden_dump()
    {
        // proxier_test.go TestOverallIPTablesRules (as its cleanup test restores it), minus svc5 and the LB IP rules.
        var nat = """
            -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
            -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
            -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
            -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
            -A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
            -A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3003 -j KUBE-EXT-X27LE4BHSL4DOUIK
            -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
            -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
            -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 external IP" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
            -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
            -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
            -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 external IP" -m tcp -p tcp -d 192.168.99.33 --dport 80 -j KUBE-EXT-4SW47YFZTEDKD3PK
            -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS
            -A KUBE-EXT-4SW47YFZTEDKD3PK -m comment --comment "masquerade traffic for ns4/svc4:p80 external destinations" -j KUBE-MARK-MASQ
            -A KUBE-EXT-4SW47YFZTEDKD3PK -j KUBE-SVC-4SW47YFZTEDKD3PK
            -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
            -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
            -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "route LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
            -A KUBE-EXT-X27LE4BHSL4DOUIK -m comment --comment "masquerade traffic for ns3/svc3:p80 external destinations" -j KUBE-MARK-MASQ
            -A KUBE-EXT-X27LE4BHSL4DOUIK -j KUBE-SVC-X27LE4BHSL4DOUIK
            -A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -s 10.180.0.5 -j KUBE-MARK-MASQ
            -A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.5:80
            -A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
            -A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
            -A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ
            -A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
            -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
            -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
            -A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -s 10.180.0.4 -j KUBE-MARK-MASQ
            -A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.4:80
            -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
            -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.4:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-UKSFD7AGPMPPLUHC
            -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.5:80" -j KUBE-SEP-C6EBXVWJJZMIWKLZ
            -A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
            -A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.0.2:80" -j KUBE-SEP-RS4RBKLTHTF2IUXJ
            -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
            -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.180.0.3:80" -j KUBE-SEP-OYPFS5VJICHGATKP
            -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
            -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ
            """;
        var filter = """
            -A KUBE-NODEPORTS -m comment --comment "ns2/svc2:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT
            -A KUBE-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT
            -A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j DROP
            -A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP
            """;
        var text = Render(OverallServices());
        Assert.Equal(Lines(nat).Order(StringComparer.Ordinal), Rules(text, "nat").Order(StringComparer.Ordinal));
        Assert.Equal(Lines(filter).Order(StringComparer.Ordinal), Rules(text, "filter").Order(StringComparer.Ordinal));
        Assert.Equal(NodePortsJump, Rules(text, "nat").Last(l => l.StartsWith("-A KUBE-SERVICES ", StringComparison.Ordinal)));
        Assert.Contains(":KUBE-NODEPORTS - [0:0]", Table(text, "nat"));
        Assert.Contains(":KUBE-EXT-GNZBNJ2PO5MGZ6GT - [0:0]", Table(text, "nat"));
        Assert.Contains(":KUBE-EXTERNAL-SERVICES - [0:0]", Table(text, "filter"));
        Assert.Contains("-I INPUT 1 -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES", Table(text, "filter"));
        Assert.Contains("-I FORWARD 1 -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES", Table(text, "filter"));
        Assert.Contains("-I INPUT 1 -m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS", Table(text, "filter"));
    }

    [Fact]
    public void Local_policy_with_a_local_endpoint_sends_external_traffic_to_kube_svl_only()
    {
        var svc = Port("ns2", "svc2", "p80", "172.30.0.42", 80, []) with
        {
            Type = ServiceType.NodePort, NodePort = 3001, ExternalTrafficPolicy = TrafficPolicy.Local,
            Backends = [new BackendAddress(IPAddress.Parse("10.180.0.1"), 80) { IsLocal = true }, new BackendAddress(IPAddress.Parse("10.180.0.2"), 80)],
        };
        var text = Render([svc]);
        var nat = Rules(text, "nat");
        Assert.Contains("-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -j KUBE-SVL-GNZBNJ2PO5MGZ6GT", nat);
        var svl = nat.Where(l => l.StartsWith("-A KUBE-SVL-GNZBNJ2PO5MGZ6GT ", StringComparison.Ordinal)).ToList();
        Assert.Contains("10.180.0.1:80", Assert.Single(svl), StringComparison.Ordinal);
        Assert.Equal(2, nat.Count(l => l.StartsWith("-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment \"ns2/svc2:p80 -> ", StringComparison.Ordinal)));
        Assert.DoesNotContain(nat, l => l.Contains("masquerade traffic for", StringComparison.Ordinal));
        Assert.Empty(Rules(text, "filter"));
    }

    [Fact]
    public void Internal_traffic_policy_local_uses_kube_svl_for_the_cluster_ip()
    {
        var local = new BackendAddress(IPAddress.Parse("10.180.0.1"), 80) { IsLocal = true };
        var remote = new BackendAddress(IPAddress.Parse("10.180.0.2"), 80);
        var svc = Port("ns1", "svc1", "p80", "172.30.0.41", 80, []) with { InternalTrafficPolicy = TrafficPolicy.Local, Backends = [local, remote] };
        var nat = Rules(Render([svc]), "nat");
        Assert.Contains("-A KUBE-SERVICES -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVL-XPGD46QRK7WJZT7O", nat);
        Assert.Contains("-A KUBE-SVL-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ", nat);
        Assert.Contains("-A KUBE-SVL-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 -> 10.180.0.1:80\" -j KUBE-SEP-SXIVWICOYRO3J4NJ", nat);
        Assert.DoesNotContain(nat, l => l.Contains("KUBE-SVC-", StringComparison.Ordinal) || l.Contains("10.180.0.2", StringComparison.Ordinal));

        // No local endpoint: the ClusterIP is dropped (not rejected), and nothing is left in nat.
        var none = Render([svc with { Backends = [remote] }]);
        Assert.Equal(
            ["-A KUBE-SERVICES -m comment --comment \"ns1/svc1:p80 has no local endpoints\" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j DROP"],
            Rules(none, "filter"));
        Assert.DoesNotContain(Rules(none, "nat"), l => l.Contains("svc1", StringComparison.Ordinal));
    }

    [Fact]
    public void A_node_port_without_endpoints_is_rejected_like_its_cluster_ip()
    {
        var svc = Port("ns3", "svc3", "p80", "172.30.0.43", 80, []) with { Type = ServiceType.NodePort, NodePort = 3003 };
        var text = Render([svc]);
        Assert.Equal(
            [
                "-A KUBE-SERVICES -m comment --comment \"ns3/svc3:p80 has no endpoints\" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j REJECT",
                "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"ns3/svc3:p80 has no endpoints\" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3003 -j REJECT",
            ],
            Rules(text, "filter"));
        Assert.DoesNotContain(Rules(text, "nat"), l => l.Contains("svc3", StringComparison.Ordinal));
    }

    [Fact]
    public void Node_port_addresses_jump_for_the_node_ips_inside_them()
    {
        var o = KubeProxyTest with
        {
            NodePortAddresses = [IPNetwork.Parse("192.168.10.0/24")],
            NodeIps = [IPAddress.Parse("192.168.10.11"), IPAddress.Parse("172.18.0.2")],
        };
        var nat = Rules(Render(OverallServices(), o), "nat");
        Assert.Equal(
            "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -d 192.168.10.11 -j KUBE-NODEPORTS",
            nat.Last(l => l.StartsWith("-A KUBE-SERVICES ", StringComparison.Ordinal)));
        Assert.Single(nat, l => l.EndsWith("-j KUBE-NODEPORTS", StringComparison.Ordinal));
        Assert.DoesNotContain(NodePortsJump, nat);
        // 0.0.0.0/0 among them means every local address, as kube-proxy's MatchAll.
        Assert.Contains(NodePortsJump, Rules(Render([], o with { NodePortAddresses = [IPNetwork.Parse("0.0.0.0/0")] }), "nat"));
    }

    [Fact]
    public void A_partial_sync_inserts_new_kube_services_rules_above_the_node_port_jump()
    {
        var all = OverallServices();
        var added = Port("ns7", "svc7", "p80", "172.30.0.47", 80, ["10.180.0.7"]) with { ExternalIps = [IPAddress.Parse("192.168.99.77")] };
        var text = IptablesRules.RenderPartial([.. all, added], all, KubeProxyTest);
        var nat = Table(text, "nat");
        Assert.Contains($"-I KUBE-SERVICES 1 -m comment --comment \"ns7/svc7:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.47 --dport 80 -j {KubeProxyNames.IptablesServiceChain(added.Name, "tcp")}", nat);
        Assert.Contains(nat, l => l.StartsWith("-I KUBE-SERVICES 1 -m comment --comment \"ns7/svc7:p80 external IP\"", StringComparison.Ordinal));
        Assert.DoesNotContain(nat, l => l.StartsWith("-A KUBE-SERVICES ", StringComparison.Ordinal));

        // A node-port service leaving: its KUBE-NODEPORTS rule and filter rules go by exact text; its chains are deleted.
        var svc2 = all[1];
        var removed = IptablesRules.RenderPartial(all.Where(s => s != svc2).ToList(), all, KubeProxyTest);
        Assert.Contains("-D KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT", Table(removed, "nat"));
        Assert.Contains("-X KUBE-EXT-GNZBNJ2PO5MGZ6GT", Table(removed, "nat"));
        Assert.Contains("-D KUBE-EXTERNAL-SERVICES -m comment --comment \"ns2/svc2:p80 has no local endpoints\" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP", Table(removed, "filter"));
        Assert.Contains("-D KUBE-NODEPORTS -m comment --comment \"ns2/svc2:p80 health check node port\" -m tcp -p tcp --dport 30000 -j ACCEPT", Table(removed, "filter"));
    }

    [Fact]
    public void Of_two_ports_with_one_node_port_the_first_keeps_it_and_the_other_keeps_its_cluster_ip()
    {
        var a = Port("ns1", "a", null, "10.96.0.1", 80, ["10.244.0.1"]) with { Type = ServiceType.NodePort, NodePort = 30080 };
        var b = Port("ns1", "b", null, "10.96.0.2", 80, ["10.244.0.2"]) with { Type = ServiceType.NodePort, NodePort = 30080 };
        var udp = Port("ns1", "c", null, "10.96.0.3", 80, ["10.244.0.3"], protocol: Protocol.Udp) with { Type = ServiceType.NodePort, NodePort = 30080 };
        var skipped = new List<ServiceSkip>();
        var r = ServiceModel.Renderable([b, udp, a], skipped);
        Assert.Equal([30080, 0, 30080], r.Select(s => s.NodePort));
        var skip = Assert.Single(skipped);
        Assert.Equal("duplicate-nodeport", skip.Code);
        Assert.Equal("ns1/b (10.96.0.2:80/tcp): node port 30080/tcp skipped: already taken by ns1/a", skip.Text);
        var nat = Rules(Render([a, b]), "nat");
        Assert.Contains("ns1/a", Assert.Single(nat, l => l.StartsWith("-A KUBE-NODEPORTS ", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.Contains(nat, l => l.StartsWith("-A KUBE-SERVICES -m comment --comment \"ns1/b cluster IP\"", StringComparison.Ordinal));
    }

    [Fact]
    public void Flush_also_removes_the_node_port_and_external_chains()
    {
        var filter = IptablesSnapshot.Parse("""
            :KUBE-SERVICES - [0:0]
            :KUBE-EXTERNAL-SERVICES - [0:0]
            :KUBE-NODEPORTS - [0:0]
            -A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
            -A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS
            """);
        var nat = IptablesSnapshot.Parse(":KUBE-NODEPORTS - [0:0]\n:KUBE-EXT-GNZBNJ2PO5MGZ6GT - [0:0]\n:KUBE-SVL-GNZBNJ2PO5MGZ6GT - [0:0]\n");
        var text = IptablesRules.RenderFlush(filter, nat)!;
        foreach (var chain in new[] { "KUBE-EXTERNAL-SERVICES", "KUBE-EXT-GNZBNJ2PO5MGZ6GT", "KUBE-SVL-GNZBNJ2PO5MGZ6GT" })
        {
            Assert.Contains("-X " + chain, text, StringComparison.Ordinal);
        }

        Assert.Equal(2, text.Split('\n').Count(l => l == "-X KUBE-NODEPORTS"));
        Assert.Contains("-D INPUT -m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS", text, StringComparison.Ordinal);
    }
}
