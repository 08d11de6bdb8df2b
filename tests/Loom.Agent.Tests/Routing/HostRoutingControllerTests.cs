using System.Net;
using Loom.Agent.Routing;
using Loom.Core.Cni;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Store;
using Loom.Datapath.Routing;
using Loom.Linux;
using Loom.Linux.Bpf;
using Loom.Testing;
using static Loom.Agent.Tests.TestNodeNetworks;

namespace Loom.Agent.Tests.Routing;

/// <summary>
/// The host routing controller in a node namespace of its own: hr_from_pod on the host veths that carry a
/// hostRouting: bpf network's alias, hr_from_underlay on a veth "underlay"; veths and networks come and go.
/// </summary>
public sealed class HostRoutingControllerTests : IDisposable
{
    private static readonly HostRoutingOptions Slot = new();
    private static int _counter;
    private readonly TestNetns _ns = new("hr");
    private readonly IStore _store = MemoryStore.Create();
    private readonly string _pins = Path.Combine(BpfFs.DefaultRoot, $"{RunPrefix.For("loom-test-")}{Interlocked.Increment(ref _counter)}-agenthr");
    private readonly int _underlay;

    public HostRoutingControllerTests()
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
        _ns.Dispose();
        if (Directory.Exists(_pins))
        {
            BpfFs.RemoveTree(_pins);
        }
    }

    private string Pins => Path.Combine(_pins, "host_routing");

    private HostRoutingController Controller(TestNodeNetworks networks, string iface = "ul0", PodDelivery delivery = PodDelivery.Peer) => new(
        new NodeContext("n1", new AgentConfig { Node = "n1", Iface = iface, BpfPinDir = _pins }, new ClusterConfig(),
            IPAddress.Parse("192.168.50.11"), 1500, IPNetwork.Parse("10.244.1.0/24")),
        networks, new AgentLoops(_store, TextWriter.Null), () => delivery);

    /// <summary>A veth pair in the node namespace; the first end gets the alias loom-cni gives a routed pod's host veth.</summary>
    private int Veth(string name, string network)
    {
        var link = _ns.Netlink.LinkAdd(new VethSpec(name, name + "p"));
        _ns.Netlink.LinkSetAlias(link.Index, CniNames.RoutedVethAlias(network));
        return link.Index;
    }

    private uint? Program(int ifindex) => _ns.Run(() => BpfTc.Query(ifindex, TcDirection.Ingress, Slot.TcPriority, Slot.TcHandle));

    [Fact]
    public void Pod_veths_of_bpf_networks_and_the_underlay_get_the_programs_and_lose_them_with_the_veth_and_the_network()
    {
        var cilium = Veth("lxc1", "cilium");
        var flannel = Veth("veth1", "flannel"); // a legacy network's pod: the host stack routes it
        var networks = new TestNodeNetworks(Flannel(), Cilium());
        using var hr = Controller(networks);
        _ns.Run(() => hr.StartAsync(CancellationToken.None).GetAwaiter().GetResult());
        Assert.NotNull(Program(cilium));
        Assert.NotNull(Program(_underlay));
        Assert.Null(Program(flannel));
        var routing = Assert.IsType<BpfHostRouting>(hr.Loaded);
        Assert.Equal(new Dictionary<int, HostRoutingRole> { [cilium] = HostRoutingRole.Pod, [_underlay] = HostRoutingRole.Underlay },
            _ns.Run(routing.AttachedInterfaces));
        Assert.True(hr.Describe().Healthy);

        // A pod created later is found by the next pass; a deleted one is forgotten.
        var later = Veth("lxc2", "cilium");
        _ns.Run(hr.Pass);
        Assert.NotNull(Program(later));
        _ns.Netlink.LinkDel(cilium);
        _ns.Run(hr.Pass);
        Assert.Equal(new[] { later, _underlay }.Order(), _ns.Run(routing.AttachedInterfaces).Keys.Order());

        networks.Set(Flannel());
        _ns.Run(hr.Pass);
        Assert.Null(Program(later));
        Assert.Null(Program(_underlay));
        Assert.False(Directory.Exists(Pins));
        Assert.Null(hr.Loaded);
    }

    [Fact]
    public void Pins_a_previous_run_left_are_removed_when_no_bpf_network_is_left()
    {
        var pod = Veth("lxc1", "cilium");
        using (var before = Controller(new TestNodeNetworks(Cilium())))
        {
            _ns.Run(before.Pass);
        }

        Assert.NotNull(Program(pod));
        using var after = Controller(new TestNodeNetworks(Flannel()));
        _ns.Run(after.Pass);
        Assert.Null(Program(pod));
        Assert.Null(Program(_underlay));
        Assert.False(Directory.Exists(Pins));
    }

    [Fact]
    public void Egress_delivery_is_written_to_the_config_map()
    {
        Veth("lxc1", "cilium");
        using var hr = Controller(new TestNodeNetworks(Cilium()), delivery: PodDelivery.Egress);
        _ns.Run(hr.Pass);
        var flags = _ns.Run(() => hr.Loaded!.Loaded.Map<uint, uint>(HostRoutingMaps.Config).Lookup(0));
        Assert.Equal(HostRoutingMaps.FlagEgressDelivery, flags);
    }

    [Fact]
    public void Without_an_underlay_host_routing_is_refused_in_describe_with_nothing_attached()
    {
        var pod = Veth("lxc1", "cilium");
        using var hr = Controller(new TestNodeNetworks(Cilium()), iface: "nope0");
        _ns.Run(() => hr.StartAsync(CancellationToken.None).GetAwaiter().GetResult()); // the agent still starts
        var status = hr.Describe();
        Assert.False(status.Healthy);
        Assert.Equal("network cilium: hostRouting: bpf: the underlay device nope0 does not exist on this node (\"iface\" in the agent config)", status.LastError);
        Assert.Null(Program(pod));
        Assert.False(Directory.Exists(Pins));
        Assert.Throws<NetworkRefusedException>(() => _ns.Run(hr.Pass));
    }
}
