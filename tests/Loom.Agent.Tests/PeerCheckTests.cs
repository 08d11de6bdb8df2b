using System.Net;
using System.Net.NetworkInformation;
using Loom.Agent.Networks;
using Loom.Core.Model;
using Loom.Core.Pool;
using Loom.Core.Store;
using Loom.Datapath.Networks;

namespace Loom.Agent.Tests;

/// <summary>Only what the cluster config and the pod-CIDR claims back becomes a route to a peer.</summary>
public sealed class PeerCheckTests
{
    private static readonly ClusterConfig Cluster = new();
    private static readonly IPAddress Self = IPAddress.Parse("192.168.10.100");

    private static Versioned<Node> Node(string name, string cidr, string ip = "192.168.10.102", string? mac = "02:00:00:00:00:02") =>
        new(name, new Node { Name = name, UnderlayInterface = "eth1", UnderlayIp = IPAddress.Parse(ip), PodCidrs = [IPNetwork.Parse(cidr)], VtepMac = mac }, 1);

    private static PodCidrClaim Claim(string cidr, string node) => new(IPNetwork.Parse(cidr), node);

    private static readonly Network Flannel = Network.Flannel();

    private static readonly Network Cilium = new()
    {
        Name = "cilium", PodCidr = IPNetwork.Parse("10.245.0.0/16"), Plumbing = Plumbing.Routed, RoutingMode = Loom.Core.Model.RoutingMode.Native, AutoDirectNodeRoutes = true,
    };

    private static (List<NetworkPeer> Peers, List<Rejection> Rejected) Check(IEnumerable<Versioned<Node>> nodes, params PodCidrClaim[] claims) =>
        CheckOn(Flannel, nodes, claims);

    private static (List<NetworkPeer> Peers, List<Rejection> Rejected) CheckOn(Network network, IEnumerable<Versioned<Node>> nodes, params PodCidrClaim[] claims)
    {
        var rejected = new List<Rejection>();
        return (PeerCheck.Peers("k8s-w1", Self, network, network == Flannel, Cluster, [Flannel, Cilium], nodes, claims, rejected), rejected);
    }

    private static Versioned<Node> WithNetwork(Versioned<Node> n, string network, string cidr, string? mac = null) =>
        n with { Value = n.Value with { Networks = new Dictionary<string, NodeNetwork> { [network] = new() { PodCidr = IPNetwork.Parse(cidr), VtepMac = mac } } } };

    [Fact]
    public void A_claimed_cidr_of_the_pool_becomes_a_peer()
    {
        var (peers, rejected) = Check([Node("k8s-w2", "10.244.5.0/24")], Claim("10.244.5.0/24", "k8s-w2"));
        Assert.Empty(rejected);
        Assert.Equal(new NetworkPeer("k8s-w2", IPAddress.Parse("192.168.10.102"), IPNetwork.Parse("10.244.5.0/24")) { VtepMac = PhysicalAddress.Parse("02-00-00-00-00-02") },
            Assert.Single(peers));
    }

    [Theory]
    [InlineData("0.0.0.0/0", "pod-cidr-outside-pools")]
    [InlineData("192.168.10.0/24", "pod-cidr-outside-pools")] // the underlay subnet
    [InlineData("10.244.0.0/16", "pod-cidr-outside-pools")]  // the whole pool, not a node's /24
    [InlineData("10.244.6.0/24", "pod-cidr-not-claimed")]    // claimed by k8s-w3
    [InlineData("10.244.7.0/24", "pod-cidr-not-claimed")]    // claimed by nobody
    public void A_pod_cidr_the_claims_do_not_back_gets_no_route(string cidr, string reason)
    {
        var (peers, rejected) = Check([Node("k8s-w2", cidr)], Claim("10.244.6.0/24", "k8s-w3"));
        Assert.Empty(peers);
        var r = Assert.Single(rejected);
        Assert.Equal(("node", "k8s-w2", reason), (r.Kind, r.Key, r.Reason));
        Assert.Contains(cidr, r.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("zz:zz", "bad-vtep-mac")]
    [InlineData("03:00:00:00:00:02", "bad-vtep-mac")] // multicast
    [InlineData("00:00:00:00:00:00", "bad-vtep-mac")]
    [InlineData("02:00:00:00:00:02:07", "bad-vtep-mac")]
    public void A_bad_vtep_mac_is_refused_not_thrown(string mac, string reason)
    {
        var (peers, rejected) = Check([Node("k8s-w2", "10.244.5.0/24", mac: mac)], Claim("10.244.5.0/24", "k8s-w2"));
        Assert.Empty(peers);
        Assert.Equal(reason, Assert.Single(rejected).Reason);
    }

    [Theory]
    [InlineData("10.244.9.9")]      // inside the pod pool
    [InlineData("10.96.0.1")]       // inside the service range
    [InlineData("224.0.0.1")]
    [InlineData("255.255.255.255")]
    [InlineData("127.0.0.1")]
    [InlineData("0.0.0.0")]
    [InlineData("192.168.10.100")]  // this node
    [InlineData("fd00::1")]
    public void An_underlay_address_a_tunnel_must_not_use_is_refused(string ip)
    {
        var (peers, rejected) = Check([Node("k8s-w2", "10.244.5.0/24", ip: ip)], Claim("10.244.5.0/24", "k8s-w2"));
        Assert.Empty(peers);
        Assert.Equal("bad-underlay-ip", Assert.Single(rejected).Reason);
    }

    [Fact]
    public void A_node_stored_under_another_nodes_key_is_refused()
    {
        var (peers, rejected) = Check([Node("k8s-w2", "10.244.5.0/24") with { Key = "k8s-w3" }], Claim("10.244.5.0/24", "k8s-w2"));
        Assert.Empty(peers);
        Assert.Equal(("k8s-w3", "name-mismatch"), (Assert.Single(rejected).Key, Assert.Single(rejected).Reason));
    }

    [Fact]
    public void One_bad_node_does_not_hide_the_others_and_a_node_without_a_tunnel_yet_is_not_an_error()
    {
        var notReady = Node("k8s-w4", "10.244.8.0/24", mac: null);
        var (peers, rejected) = Check(
            [Node("k8s-evil", "0.0.0.0/0", ip: "192.168.10.66"), notReady, Node("k8s-w2", "10.244.5.0/24"), Node("k8s-w1", "10.244.0.0/24")],
            Claim("10.244.5.0/24", "k8s-w2"), Claim("10.244.8.0/24", "k8s-w4"), Claim("10.244.0.0/24", "k8s-w1"));
        Assert.Equal("k8s-w2", Assert.Single(peers).Node);
        Assert.Equal("k8s-evil", Assert.Single(rejected).Key);
    }

    [Fact]
    public void A_second_network_takes_its_peers_from_the_nodes_networks_entries_and_needs_no_vtep_when_native()
    {
        var w2 = WithNetwork(Node("k8s-w2", "10.244.5.0/24"), "cilium", "10.245.3.0/24");
        var (peers, rejected) = CheckOn(Cilium, [w2, Node("k8s-w3", "10.244.6.0/24")], Claim("10.245.3.0/24", "k8s-w2"), Claim("10.244.6.0/24", "k8s-w3"));
        Assert.Empty(rejected);
        var p = Assert.Single(peers); // k8s-w3 does not run cilium yet: not a peer, not an error
        Assert.Equal(("k8s-w2", IPNetwork.Parse("10.245.3.0/24"), (PhysicalAddress?)null), (p.Node, p.Block, p.VtepMac));
    }

    [Fact]
    public void A_block_of_another_networks_pool_is_refused()
    {
        var w2 = WithNetwork(Node("k8s-w2", "10.244.5.0/24"), "cilium", "10.244.5.0/24");
        var (peers, rejected) = CheckOn(Cilium, [w2], Claim("10.244.5.0/24", "k8s-w2"));
        Assert.Empty(peers);
        Assert.Equal("pod-cidr-outside-pools", Assert.Single(rejected).Reason);
        Assert.Contains("10.245.0.0/16", Assert.Single(rejected).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void An_underlay_inside_any_networks_pool_is_refused()
    {
        var (peers, rejected) = Check([Node("k8s-w2", "10.244.5.0/24", ip: "10.245.7.7")], Claim("10.244.5.0/24", "k8s-w2"));
        Assert.Empty(peers);
        Assert.Equal("bad-underlay-ip", Assert.Single(rejected).Reason);
    }
}
