using System.Net;
using Loom.Agent.Cni;
using Loom.Agent.Networks;
using Loom.Core.Model;
using Loom.Core.Store;

namespace Loom.Agent.Tests;

/// <summary>The CNI config follows the node's primary network: written when it is ready, the others set aside.</summary>
public sealed class CniConfigControllerTests : IDisposable
{
    private static readonly Network Flannel = Network.Flannel();

    private static readonly Network Cilium = new()
    {
        Name = "cilium", PodCidr = IPNetwork.Parse("10.245.0.0/16"), Plumbing = Plumbing.Routed,
        RoutingMode = Loom.Core.Model.RoutingMode.Native, AutoDirectNodeRoutes = true,
    };

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("loom-cniconf-");
    private readonly FakeNetworks _networks = new();

    private AgentConfig Config(bool exclusive = true) => new()
    {
        Node = "k8s-w1", CniExclusive = exclusive,
        CniConfDir = Path.Combine(_dir.FullName, "net.d"), StateDir = Path.Combine(_dir.FullName, "run"), IpamDataDir = Path.Combine(_dir.FullName, "ipam"),
    };

    private async Task<CniConfigController> StartedAsync(AgentConfig config)
    {
        await using var store = MemoryStore.Create();
        var node = new NodeContext("k8s-w1", config, new ClusterConfig(), IPAddress.Parse("192.168.10.101"), 1500, IPNetwork.Parse("10.244.1.0/24"));
        var c = new CniConfigController(node, new AgentLoops(store, TextWriter.Null), _networks);
        await c.StartAsync(CancellationToken.None);
        return c;
    }

    private string NetD(string name) => Path.Combine(_dir.FullName, "net.d", name);

    [Fact]
    public async Task Nothing_is_written_until_the_primary_network_is_ready()
    {
        _networks.Set("flannel", new NetworkOnNode(Flannel, IPNetwork.Parse("10.244.1.0/24")) { Ready = false });
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => StartedAsync(Config()));
        Assert.Contains("primary network flannel is not ready", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(NetD("10-loom.conflist")));
    }

    [Fact]
    public async Task A_routed_primary_gets_05_loom_conflist_and_every_other_config_is_set_aside()
    {
        Directory.CreateDirectory(NetD(""));
        File.WriteAllText(NetD("10-flannel.conflist"), "{}");
        File.WriteAllText(NetD("README"), "not a config");
        _networks.Set("cilium",
            new NetworkOnNode(Flannel, IPNetwork.Parse("10.244.1.0/24")) { Ready = true },
            new NetworkOnNode(Cilium, IPNetwork.Parse("10.245.3.0/24")) { Ready = true });
        using var c = await StartedAsync(Config());

        var conf = File.ReadAllText(NetD("05-loom.conflist"));
        Assert.Contains("\"name\": \"cilium\"", conf, StringComparison.Ordinal);
        Assert.Contains("\"plumbing\": \"routed\"", conf, StringComparison.Ordinal);
        Assert.Contains("\"mtu\": 1500", conf, StringComparison.Ordinal); // native: no tunnel overhead
        Assert.True(File.Exists(NetD("10-flannel.conflist.loom_bak")));
        Assert.False(File.Exists(NetD("10-flannel.conflist")));
        Assert.True(File.Exists(NetD("README")));
        Assert.Contains("LOOM_SUBNET=10.245.3.1/24", File.ReadAllText(Path.Combine(_dir.FullName, "run", "subnet-cilium.env")), StringComparison.Ordinal);
        Assert.Contains("LOOM_SUBNET=10.244.1.1/24", File.ReadAllText(Path.Combine(_dir.FullName, "run", "subnet.env")), StringComparison.Ordinal);
        Assert.Equal(NetD("05-loom.conflist"), c.ConflistPath);
    }

    [Fact]
    public async Task Switching_the_primary_back_sets_the_routed_conflist_aside_and_a_deleted_network_takes_its_files()
    {
        _networks.Set("cilium",
            new NetworkOnNode(Flannel, IPNetwork.Parse("10.244.1.0/24")) { Ready = true },
            new NetworkOnNode(Cilium, IPNetwork.Parse("10.245.3.0/24")) { Ready = true });
        using var c = await StartedAsync(Config(exclusive: false));
        Assert.True(File.Exists(NetD("05-loom.conflist")));

        _networks.Set("flannel", _networks.Current.ToArray());
        await c.StartAsync(CancellationToken.None); // one pass
        Assert.True(File.Exists(NetD("10-loom.conflist")));
        Assert.Contains("\"mtu\": 1450", File.ReadAllText(NetD("10-loom.conflist")), StringComparison.Ordinal);
        Assert.True(File.Exists(NetD("05-loom.conflist.loom_bak")));
        Assert.False(File.Exists(NetD("05-loom.conflist")));

        _networks.Set("flannel", new NetworkOnNode(Flannel, IPNetwork.Parse("10.244.1.0/24")) { Ready = true });
        await c.StartAsync(CancellationToken.None);
        Assert.False(File.Exists(NetD("05-loom.conflist.loom_bak")));
        Assert.False(File.Exists(Path.Combine(_dir.FullName, "run", "subnet-cilium.env")));
    }

    [Fact]
    public async Task Without_cni_exclusive_foreign_configs_stay()
    {
        Directory.CreateDirectory(NetD(""));
        File.WriteAllText(NetD("99-other.conf"), "{}");
        _networks.Set("flannel", new NetworkOnNode(Flannel, IPNetwork.Parse("10.244.1.0/24")) { Ready = true });
        using var c = await StartedAsync(Config(exclusive: false));
        Assert.True(File.Exists(NetD("10-loom.conflist")));
        Assert.True(File.Exists(NetD("99-other.conf")));
    }

    public void Dispose() => _dir.Delete(recursive: true);

    private sealed class FakeNetworks : INodeNetworks
    {
        public IReadOnlyList<NetworkOnNode> Current { get; private set; } = [];

        public string? Primary { get; private set; }

        public event Action? Changed;

        public void Set(string primary, params NetworkOnNode[] networks)
        {
            Current = networks;
            Primary = primary;
            Changed?.Invoke();
        }
    }
}
