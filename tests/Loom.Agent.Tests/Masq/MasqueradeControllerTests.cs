using System.Net;
using Loom.Agent.Masq;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Store;
using Loom.Datapath.Masquerade;
using Loom.Linux;
using Loom.Linux.Bpf;
using Loom.Linux.Firewall;
using Loom.Testing;
using static Loom.Agent.Tests.TestNodeNetworks;

namespace Loom.Agent.Tests.Masq;

/// <summary>
/// The masquerade controller in a node namespace of its own: iptables rules per network, eBPF masquerade on a veth
/// "underlay", both following the networks as they come and go. Pins live in a per-run bpffs directory.
/// </summary>
public sealed class MasqueradeControllerTests : IDisposable
{
    private static int _counter;
    private readonly TestNetns _ns = new("masq");
    private readonly string _pins = Path.Combine(BpfFs.DefaultRoot, $"{RunPrefix.For("loom-test-")}{Interlocked.Increment(ref _counter)}-agentmasq");
    private readonly IStore _store = MemoryStore.Create();
    private readonly int _underlay;

    public MasqueradeControllerTests()
    {
        try
        {
            // A veth as the underlay: this kernel has no dummy driver.
            var ul = _ns.Netlink.LinkAdd(new VethSpec("ul0", "ul0p"));
            _ns.Netlink.LinkSetUp(ul.Index);
            _underlay = ul.Index;
        }
        catch
        {
            _ns.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _store.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _ns.Dispose(); // the devices go, and the filters with them
        if (Directory.Exists(_pins))
        {
            BpfFs.RemoveTree(_pins);
        }
    }

    private string MasqPins => Path.Combine(_pins, "masq");

    private MasqueradeController Controller(TestNodeNetworks networks, string iface = "ul0", bool? ipMasq = null) => new(
        new NodeContext("n1", new AgentConfig { Node = "n1", Iface = iface, BpfPinDir = _pins, IpMasq = ipMasq }, new ClusterConfig(),
            IPAddress.Parse("192.168.50.11"), 1500, IPNetwork.Parse("10.244.1.0/24")),
        networks, new AgentLoops(_store, TextWriter.Null));

    private string Rules() => _ns.Run(() => IptablesRestore.Save("nat") + IptablesRestore.Save("filter"));

    private (uint? Ingress, uint? Egress) Programs() => _ns.Run(() => (
        BpfTc.Query(_underlay, TcDirection.Ingress, MasqueradeOptions.DefaultTcPriority, MasqueradeOptions.DefaultTcHandle),
        BpfTc.Query(_underlay, TcDirection.Egress, MasqueradeOptions.DefaultTcPriority, MasqueradeOptions.DefaultTcHandle)));

    [Fact]
    public void A_network_removed_leaves_none_of_its_rules_and_the_others_stay()
    {
        var networks = new TestNodeNetworks(Flannel(), Cilium(Masquerade.Iptables));
        using var masq = Controller(networks);
        _ns.Run(() => masq.StartAsync(CancellationToken.None).GetAwaiter().GetResult());
        var rules = Rules();
        Assert.Contains("-A LOOM-POSTRTG -s 10.245.0.0/16 ! -d 224.0.0.0/4 -m comment --comment \"loom masq\" -j MASQUERADE --random-fully", rules, StringComparison.Ordinal);
        Assert.Contains("-A LOOM-POSTRTG -s 10.244.1.0/24 -d 10.245.0.0/16 -m comment --comment \"loom masq\" -j RETURN", rules, StringComparison.Ordinal);
        Assert.Contains("-A LOOM-FWD -s 10.245.0.0/16 -m comment --comment \"loom forward\" -j ACCEPT", rules, StringComparison.Ordinal);
        Assert.Equal("1", _ns.Run(() => Sysctl.Get("net.ipv4.ip_forward")).Trim());

        networks.Set(Flannel());
        _ns.Run(masq.Pass);
        rules = Rules();
        Assert.DoesNotContain("10.245.", rules, StringComparison.Ordinal);
        Assert.Contains("-A LOOM-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment \"loom masq\" -j MASQUERADE --random-fully", rules, StringComparison.Ordinal);
        Assert.Single(rules.Split('\n'), l => l == "-A POSTROUTING -m comment --comment \"loom masq\" -j LOOM-POSTRTG");
        Assert.True(masq.Describe().Healthy);

        networks.Set();
        _ns.Run(masq.Pass);
        Assert.DoesNotContain("-A LOOM-", Rules(), StringComparison.Ordinal);
    }

    [Fact]
    public void Bpf_masquerade_is_attached_to_the_underlay_and_removed_with_its_network()
    {
        var networks = new TestNodeNetworks(Flannel(), Cilium(Masquerade.Bpf, nativeRoutingCidr: "10.245.0.0/16"));
        using var masq = Controller(networks);
        _ns.Run(masq.Pass);
        var (ingress, egress) = Programs();
        Assert.NotNull(ingress);
        Assert.NotNull(egress);
        var attached = Assert.IsType<BpfMasquerade>(masq.Bpf.Attached);
        Assert.Equal(IPNetwork.Parse("10.245.0.0/16"), attached.Options.PodCidr);
        var excluded = _ns.Run(() => attached.Loaded.Map<MasqLpmKey, uint>(MasqueradeMaps.NonMasquerade).Keys());
        Assert.Contains(new MasqLpmKey(16, LbMapsAddress("10.244.0.0")), excluded); // Flannel's pods keep Cilium's pods' IPs
        Assert.DoesNotContain("-s 10.245.0.0/16 ! -d 224.0.0.0/4", Rules(), StringComparison.Ordinal);
        Assert.Contains("cilium: BPF on ul0", masq.Describe().Summary, StringComparison.Ordinal);

        // Again: idempotent, the same programs stay.
        _ns.Run(masq.Pass);
        Assert.Equal((ingress, egress), Programs());

        networks.Set(Flannel());
        _ns.Run(masq.Pass);
        Assert.Equal((null, null), Programs());
        Assert.False(Directory.Exists(MasqPins));
        Assert.True(masq.Describe().Healthy);
    }

    [Fact]
    public void Pins_a_previous_run_left_are_removed_when_no_bpf_network_is_left()
    {
        using (var before = Controller(new TestNodeNetworks(Cilium(Masquerade.Bpf))))
        {
            _ns.Run(before.Pass);
        }

        Assert.NotNull(Programs().Egress);
        using var after = Controller(new TestNodeNetworks(Flannel()));
        _ns.Run(after.Pass);
        Assert.Equal((null, null), Programs());
        Assert.False(Directory.Exists(MasqPins));
    }

    [Fact]
    public void Bpf_masquerade_without_an_underlay_is_refused_in_describe_with_nothing_attached()
    {
        var networks = new TestNodeNetworks(Flannel(), Cilium(Masquerade.Bpf));
        using var masq = Controller(networks, iface: "nope0");
        _ns.Run(() => masq.StartAsync(CancellationToken.None).GetAwaiter().GetResult()); // the agent still starts
        var status = masq.Describe();
        Assert.False(status.Healthy);
        Assert.Equal("network cilium: masquerade: bpf: the underlay device nope0 does not exist on this node (\"iface\" in the agent config)", status.LastError);
        Assert.False(Directory.Exists(MasqPins));
        Assert.Equal((null, null), Programs());
        Assert.Contains("-s 10.244.0.0/16 ! -d 224.0.0.0/4", Rules(), StringComparison.Ordinal); // Flannel's masquerade regardless
        Assert.Throws<NetworkRefusedException>(() => _ns.Run(masq.Pass));
    }

    [Fact]
    public void A_second_bpf_network_is_refused_naming_the_one_that_holds_it()
    {
        var networks = new TestNodeNetworks(Cilium(Masquerade.Bpf, name: "zeta", pool: "10.246.0.0/16", block: "10.246.1.0/24"), Cilium(Masquerade.Bpf));
        using var masq = Controller(networks);
        var e = Assert.Throws<NetworkRefusedException>(() => _ns.Run(masq.Pass));
        Assert.Equal(["network zeta: masquerade: bpf: refused, network cilium already masquerades in BPF on this node (bpf/masq.o takes one pod pool)"], e.Errors);
        Assert.Equal(IPNetwork.Parse("10.245.0.0/16"), masq.Bpf.Attached?.Options.PodCidr);
        Assert.NotNull(Programs().Egress);
        Assert.Equal(e.Errors[0], masq.Describe().LastError);
    }

    [Fact]
    public void With_ipmasq_off_iptables_networks_are_not_masqueraded()
    {
        using var masq = Controller(new TestNodeNetworks(Flannel()), ipMasq: false);
        _ns.Run(masq.Pass);
        var rules = Rules();
        Assert.DoesNotContain("MASQUERADE", rules, StringComparison.Ordinal);
        Assert.Contains("-A LOOM-FWD -s 10.244.0.0/16", rules, StringComparison.Ordinal);
    }

    private static uint LbMapsAddress(string ip) => LbMaps.ToNetwork(IPAddress.Parse(ip));
}
