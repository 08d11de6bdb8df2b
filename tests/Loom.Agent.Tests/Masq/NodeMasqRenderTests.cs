using Loom.Agent.Masq;
using Loom.Core.Model;
using static Loom.Agent.Tests.TestNodeNetworks;

namespace Loom.Agent.Tests.Masq;

/// <summary>LOOM-POSTRTG / LOOM-FWD for the node's networks: flannel's layout for each, the keep-source rules of all first.</summary>
public class NodeMasqRenderTests
{
    private const string C = "-m comment --comment \"loom masq\"";

    private static string[] Lines(string rules, string chain) =>
        rules.Split('\n').Where(l => l.StartsWith("-A " + chain + " ", StringComparison.Ordinal)).ToArray();

    [Fact]
    public void The_flannel_network_alone_gets_exactly_flannels_rules()
    {
        var rules = NodeMasq.Render([Flannel()], masq: true, existingNat: "", existingFilter: "");
        Assert.Equal(
        [
            $"-A LOOM-POSTRTG -m mark --mark 0x4000/0x4000 {C} -j RETURN",
            $"-A LOOM-POSTRTG -s 10.244.1.0/24 -d 10.244.0.0/16 {C} -j RETURN",
            $"-A LOOM-POSTRTG -s 10.244.0.0/16 -d 10.244.1.0/24 {C} -j RETURN",
            $"-A LOOM-POSTRTG ! -s 10.244.0.0/16 -d 10.244.1.0/24 {C} -j RETURN",
            $"-A LOOM-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 {C} -j MASQUERADE --random-fully",
            $"-A LOOM-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 {C} -j MASQUERADE --random-fully",
        ], Lines(rules, "LOOM-POSTRTG"));
        var lines = rules.Split('\n');
        Assert.Contains($"-A POSTROUTING {C} -j LOOM-POSTRTG", lines);
        Assert.Contains("-A FORWARD -m comment --comment \"loom forward\" -j LOOM-FWD", lines);
        Assert.Equal(2, lines.Count(l => l == "COMMIT"));
    }

    [Fact]
    public void Jumps_are_not_repeated_and_are_removed_when_ipmasq_is_off()
    {
        var nat = $"-A POSTROUTING {C} -j LOOM-POSTRTG\n";
        const string filter = "-A FORWARD -m comment --comment \"loom forward\" -j LOOM-FWD\n";
        var again = NodeMasq.Render([Flannel()], masq: true, nat, filter);
        Assert.DoesNotContain("-A POSTROUTING", again, StringComparison.Ordinal);
        Assert.DoesNotContain("-A FORWARD", again, StringComparison.Ordinal);
        var off = NodeMasq.Render([Flannel(), Cilium(Masquerade.Iptables)], masq: false, nat, filter);
        Assert.Contains($"-D POSTROUTING {C} -j LOOM-POSTRTG", off, StringComparison.Ordinal);
        Assert.Empty(Lines(off, "LOOM-POSTRTG"));
        Assert.Equal(4, Lines(off, "LOOM-FWD").Length);
    }

    [Fact]
    public void Two_iptables_networks_keep_pod_to_pod_traffic_between_them_and_masquerade_the_rest()
    {
        var rules = Lines(NodeMasq.Render([Flannel(), Cilium(Masquerade.Iptables)], masq: true, "", ""), "LOOM-POSTRTG");
        Assert.Equal(
        [
            $"-A LOOM-POSTRTG -m mark --mark 0x4000/0x4000 {C} -j RETURN",
            $"-A LOOM-POSTRTG -s 10.244.1.0/24 -d 10.244.0.0/16 {C} -j RETURN",
            $"-A LOOM-POSTRTG -s 10.244.1.0/24 -d 10.245.0.0/16 {C} -j RETURN",
            $"-A LOOM-POSTRTG -s 10.244.0.0/16 -d 10.244.1.0/24 {C} -j RETURN",
            $"-A LOOM-POSTRTG ! -s 10.244.0.0/16 -d 10.244.1.0/24 {C} -j RETURN",
            $"-A LOOM-POSTRTG -s 10.245.1.0/24 -d 10.245.0.0/16 {C} -j RETURN",
            $"-A LOOM-POSTRTG -s 10.245.1.0/24 -d 10.244.0.0/16 {C} -j RETURN",
            $"-A LOOM-POSTRTG -s 10.245.0.0/16 -d 10.245.1.0/24 {C} -j RETURN",
            $"-A LOOM-POSTRTG ! -s 10.245.0.0/16 -d 10.245.1.0/24 {C} -j RETURN",
            $"-A LOOM-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 {C} -j MASQUERADE --random-fully",
            $"-A LOOM-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 {C} -j MASQUERADE --random-fully",
            $"-A LOOM-POSTRTG -s 10.245.0.0/16 ! -d 224.0.0.0/4 {C} -j MASQUERADE --random-fully",
            $"-A LOOM-POSTRTG ! -s 10.245.0.0/16 -d 10.245.0.0/16 {C} -j MASQUERADE --random-fully",
        ], rules);
    }

    [Fact]
    public void The_native_routing_cidr_is_not_masqueraded()
    {
        var rules = Lines(NodeMasq.Render([Cilium(Masquerade.Iptables, nativeRoutingCidr: "10.0.0.0/8")], masq: true, "", ""), "LOOM-POSTRTG");
        Assert.Equal($"-A LOOM-POSTRTG -s 10.245.1.0/24 -d 10.0.0.0/8 {C} -j RETURN", rules[1]);
        Assert.DoesNotContain(rules, l => l.Contains("-d 10.245.0.0/16 " + C + " -j RETURN", StringComparison.Ordinal));
    }

    [Fact]
    public void A_bpf_network_beside_an_iptables_one_gets_no_masquerade_rule_only_the_keep_source_ones()
    {
        var rules = NodeMasq.Render([Flannel(), Cilium(Masquerade.Bpf, nativeRoutingCidr: "10.245.0.0/16")], masq: true, "", "");
        var nat = Lines(rules, "LOOM-POSTRTG");
        Assert.Equal(2, nat.Count(l => l.Contains("MASQUERADE", StringComparison.Ordinal)));
        Assert.All(nat.Where(l => l.Contains("MASQUERADE", StringComparison.Ordinal)), l => Assert.Contains("-s 10.244.0.0/16 ", l, StringComparison.Ordinal));
        // Cilium's pods reach Flannel's with their own IP (Flannel's "! -s POOL -d POOL" would masquerade them), and
        // Flannel's pods elsewhere reach Cilium's pods here with theirs.
        Assert.Contains($"-A LOOM-POSTRTG -s 10.245.1.0/24 -d 10.244.0.0/16 {C} -j RETURN", nat);
        Assert.Contains($"-A LOOM-POSTRTG ! -s 10.245.0.0/16 -d 10.245.1.0/24 {C} -j RETURN", nat);
        Assert.DoesNotContain($"-A LOOM-POSTRTG -s 10.245.1.0/24 -d 10.245.0.0/16 {C} -j RETURN", nat);
        Assert.True(Array.FindLastIndex(nat, l => l.EndsWith("RETURN", StringComparison.Ordinal)) < Array.FindIndex(nat, l => l.Contains("MASQUERADE", StringComparison.Ordinal)));
        Assert.Contains("-A LOOM-FWD -s 10.245.0.0/16 -m comment --comment \"loom forward\" -j ACCEPT", rules.Split('\n'));
    }

    [Fact]
    public void Networks_without_iptables_masquerade_or_no_network_at_all_leave_the_nat_chain_empty()
    {
        var beside = Lines(NodeMasq.Render([Flannel(), Cilium(Masquerade.None)], masq: true, "", ""), "LOOM-POSTRTG");
        Assert.DoesNotContain(beside, l => l.Contains("-s 10.245.0.0/16 ! -d 224.0.0.0/4", StringComparison.Ordinal) || l.Contains("-d 10.245.0.0/16 " + C + " -j MASQ", StringComparison.Ordinal));
        Assert.Contains($"-A LOOM-POSTRTG -s 10.245.1.0/24 -d 10.244.0.0/16 {C} -j RETURN", beside);
        var legacy = Cilium(Masquerade.None) with { Network = Cilium(Masquerade.None).Network with { HostRouting = HostRouting.Legacy } };
        var none = NodeMasq.Render([legacy, Cilium(Masquerade.Bpf, name: "other", pool: "10.246.0.0/16", block: "10.246.1.0/24")], masq: true, "", "");
        Assert.Empty(Lines(none, "LOOM-POSTRTG"));
        Assert.Equal(4, Lines(none, "LOOM-FWD").Length); // legacy host routing: pod traffic still crosses FORWARD
        var empty = NodeMasq.Render([], masq: true, "", "");
        Assert.Contains(":LOOM-POSTRTG - [0:0]", empty.Split('\n'));
        Assert.Contains(":LOOM-FWD - [0:0]", empty.Split('\n'));
        Assert.Empty(Lines(empty, "LOOM-POSTRTG"));
        Assert.Empty(Lines(empty, "LOOM-FWD"));
    }

    [Fact]
    public void Bpf_masquerade_and_bpf_host_routing_on_every_network_delete_both_chains_and_their_jumps()
    {
        var nat = ":POSTROUTING ACCEPT [0:0]\n:LOOM-POSTRTG - [0:0]\n-A POSTROUTING -m comment --comment \"loom masq\" -j LOOM-POSTRTG\n";
        var filter = ":FORWARD ACCEPT [0:0]\n:LOOM-FWD - [0:0]\n-A FORWARD -m comment --comment \"loom forward\" -j LOOM-FWD\n-A LOOM-FWD -s 10.245.0.0/16 -j ACCEPT\n";
        var rules = NodeMasq.Render([Cilium(Masquerade.Bpf), Cilium(Masquerade.None, name: "other", pool: "10.246.0.0/16", block: "10.246.1.0/24")], masq: true, nat, filter);
        Assert.Equal(
            "*nat\n:LOOM-POSTRTG - [0:0]\n-D POSTROUTING -m comment --comment \"loom masq\" -j LOOM-POSTRTG\n-X LOOM-POSTRTG\nCOMMIT\n"
            + "*filter\n:LOOM-FWD - [0:0]\n-D FORWARD -m comment --comment \"loom forward\" -j LOOM-FWD\n-X LOOM-FWD\nCOMMIT\n", rules);
        Assert.Equal("*nat\nCOMMIT\n*filter\nCOMMIT\n", NodeMasq.Render([Cilium(Masquerade.Bpf)], masq: true, "", ""));
    }
}
