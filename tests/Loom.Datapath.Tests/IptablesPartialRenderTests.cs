using Loom.Datapath.Services;
using static Loom.Datapath.Tests.Fixtures;

namespace Loom.Datapath.Tests;

/// <summary>
/// A partial sync's whole restore input, given what was applied before: KUBE-SERVICES is changed by single
/// <c>-D</c>/<c>-A</c> rules (never declared, which would flush it), and only services that changed are written.
/// Chain names are kube-proxy's (proxier_test.go: svc3's KUBE-SVC-X27LE4BHSL4DOUIK and its endpoints' KUBE-SEP chains).
/// </summary>
public sealed class IptablesPartialRenderTests
{
    private static readonly ServicePortState Svc3 = Port("ns3", "svc3", "p80", "172.30.0.43", 80, ["10.0.3.2"]);

    // An unchanged bystander: it must not appear in any partial input.
    private static readonly ServicePortState Svc1 = Port("ns1", "svc1", "p80", "172.30.0.41", 80, ["10.0.1.1"]);

    private static string Partial(ServicePortState[] applied, ServicePortState[] desired) =>
        IptablesRules.RenderPartial(desired, applied, KubeProxyTest);

    [Fact]
    public void Endpoint_change_rewrites_only_the_services_chains()
    {
        var moved = Svc3 with { Backends = [Svc3.Backends[0] with { Address = System.Net.IPAddress.Parse("10.0.3.3") }] };
        var golden = """
            *nat
            :KUBE-SEP-DKCFIS26GWF2WLWC - [0:0]
            :KUBE-SEP-JVVZVJ7BSEPPRNBS - [0:0]
            :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
            -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
            -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.0.3.3:80" -j KUBE-SEP-JVVZVJ7BSEPPRNBS
            -A KUBE-SEP-JVVZVJ7BSEPPRNBS -m comment --comment ns3/svc3:p80 -s 10.0.3.3 -j KUBE-MARK-MASQ
            -A KUBE-SEP-JVVZVJ7BSEPPRNBS -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.3.3:80
            -X KUBE-SEP-DKCFIS26GWF2WLWC
            COMMIT

            """;
        Assert.Equal(golden, Partial([Svc1, Svc3], [Svc1, moved]));
    }

    [Fact]
    public void First_endpoint_deletes_the_reject_and_inserts_the_jump_above_the_node_port_one()
    {
        var golden = """
            *filter
            -D KUBE-SERVICES -m comment --comment "ns3/svc3:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j REJECT
            COMMIT
            *nat
            :KUBE-SEP-DKCFIS26GWF2WLWC - [0:0]
            :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
            -I KUBE-SERVICES 1 -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
            -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
            -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.0.3.2:80" -j KUBE-SEP-DKCFIS26GWF2WLWC
            -A KUBE-SEP-DKCFIS26GWF2WLWC -m comment --comment ns3/svc3:p80 -s 10.0.3.2 -j KUBE-MARK-MASQ
            -A KUBE-SEP-DKCFIS26GWF2WLWC -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.3.2:80
            COMMIT

            """;
        Assert.Equal(golden, Partial([Svc1, Svc3 with { Backends = [] }], [Svc1, Svc3]));
    }

    [Fact]
    public void Last_endpoint_gone_deletes_the_jump_and_chains_and_appends_the_reject()
    {
        var golden = """
            *filter
            -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j REJECT
            COMMIT
            *nat
            :KUBE-SEP-DKCFIS26GWF2WLWC - [0:0]
            :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
            -D KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
            -X KUBE-SEP-DKCFIS26GWF2WLWC
            -X KUBE-SVC-X27LE4BHSL4DOUIK
            COMMIT

            """;
        Assert.Equal(golden, Partial([Svc1, Svc3], [Svc1, Svc3 with { Backends = [] }]));
    }

    [Fact]
    public void Removed_services_lose_their_jump_or_reject_and_chains()
    {
        var svc4 = Port("ns4", "svc4", "p80", "172.30.0.44", 80, []);
        var golden = """
            *filter
            -D KUBE-SERVICES -m comment --comment "ns4/svc4:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j REJECT
            COMMIT
            *nat
            :KUBE-SEP-DKCFIS26GWF2WLWC - [0:0]
            :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
            -D KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
            -X KUBE-SEP-DKCFIS26GWF2WLWC
            -X KUBE-SVC-X27LE4BHSL4DOUIK
            COMMIT

            """;
        Assert.Equal(golden, Partial([Svc1, Svc3, svc4], [Svc1]));
    }

    [Fact]
    public void Added_service_inserts_its_jump_above_the_node_port_one_and_writes_its_chains()
    {
        var golden = """
            *nat
            :KUBE-SEP-DKCFIS26GWF2WLWC - [0:0]
            :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
            -I KUBE-SERVICES 1 -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
            -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
            -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.0.3.2:80" -j KUBE-SEP-DKCFIS26GWF2WLWC
            -A KUBE-SEP-DKCFIS26GWF2WLWC -m comment --comment ns3/svc3:p80 -s 10.0.3.2 -j KUBE-MARK-MASQ
            -A KUBE-SEP-DKCFIS26GWF2WLWC -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.3.2:80
            COMMIT

            """;
        Assert.Equal(golden, Partial([Svc1], [Svc1, Svc3]));
    }

    [Fact]
    public void A_moved_cluster_ip_replaces_the_jump()
    {
        // Same service (so same chain names), new frontend: the old jump's exact text goes, the new one comes.
        var input = Partial([Svc3], [Svc3 with { Frontend = Svc3.Frontend with { Port = 8080 } }]);
        Assert.Contains("-D KUBE-SERVICES -m comment --comment \"ns3/svc3:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK\n", input, StringComparison.Ordinal);
        Assert.Contains("-I KUBE-SERVICES 1 -m comment --comment \"ns3/svc3:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.43 --dport 8080 -j KUBE-SVC-X27LE4BHSL4DOUIK\n", input, StringComparison.Ordinal);
        Assert.DoesNotContain("-X ", input, StringComparison.Ordinal);
    }

    [Fact]
    public void Nothing_changed_renders_nothing()
    {
        Assert.Equal("", Partial([Svc1, Svc3], [Svc3, Svc1]));
    }
}
