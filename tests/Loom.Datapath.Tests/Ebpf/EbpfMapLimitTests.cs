using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Loom.Core.Model;
using Loom.Datapath.Services;
using Loom.Datapath.Services.Ebpf;
using Loom.Linux;
using Loom.Linux.Bpf;
using Xunit.Abstractions;

namespace Loom.Datapath.Tests.Ebpf;

/// <summary>
/// The lb4 maps at their limits, in the kernel (a lab's namespaces and pin directory): lb4_ifaces is pruned of deleted
/// veths so churn never fills it, map sizes come from the options (a pin of another size is recreated with its entries),
/// the fill levels count entries, and a Maglev service of 300 backends gives every backend flows.
/// </summary>
public sealed class EbpfMapLimitTests(ITestOutputHelper output) : IDisposable
{
    private readonly EbpfLab _lab = new(bridge: false, 2, 80);

    public void Dispose() => _lab.Dispose();

    private EbpfServiceBackend Backend(LbMapSizes sizes, LbAlgorithm algorithm = LbAlgorithm.Random, Func<IEnumerable<int>>? interfaces = null) => new(new EbpfServiceOptions
    {
        PinDirectory = _lab.PinDirectory,
        ObjectDirectory = EbpfLab.ObjectDirectory,
        MapSizes = sizes,
        Algorithm = algorithm,
        Interfaces = interfaces,
    });

    /// <summary>Veth pairs in the node namespace (both ends there); the ifindexes of their first ends.</summary>
    private List<int> AddVeths(string tag, int n) => _lab.InNode(() =>
    {
        var nl = _lab.Node.Netlink;
        return Enumerable.Range(0, n).Select(i =>
        {
            var name = string.Create(CultureInfo.InvariantCulture, $"{tag}{i}");
            var link = nl.LinkAdd(new VethSpec(name + "a", name + "b"));
            nl.LinkSetUp(link.Index);
            return link.Index;
        }).ToList();
    });

    [Fact]
    public void Attaching_past_the_interfaces_map_size_prunes_deleted_veths_and_a_full_map_of_live_ones_says_so()
    {
        using var backend = Backend(new LbMapSizes { Interfaces = 16 });
        var first = AddVeths("old", 16);
        _lab.InNode(() => first.ForEach(backend.Attach));
        Assert.Equal(first.Order(), backend.AttachedInterfaces());

        _lab.InNode(() => first.ForEach(_lab.Node.Netlink.LinkDel)); // pods gone; their entries stay until pruned
        Assert.Equal(16, backend.Loaded.Map(LbMaps.Interfaces).CountKeys());

        var second = AddVeths("new", 16);
        _lab.InNode(() => second.ForEach(backend.Attach)); // the first one finds the map full and prunes
        Assert.Equal(second.Order(), backend.AttachedInterfaces());
        Assert.All(second, i => Assert.NotNull(_lab.InNode(() => BpfTc.Query(i, TcDirection.Ingress, 0x4c, 0x4c4f))));

        var extra = AddVeths("more", 1)[0];
        var e = Assert.Throws<BpfException>(() => _lab.InNode(() => backend.Attach(extra)));
        Assert.Contains("lb4_ifaces is full (16 interfaces", e.Message, StringComparison.Ordinal);
        Assert.Null(_lab.InNode(() => BpfTc.Query(extra, TcDirection.Ingress, 0x4c, 0x4c4f))); // nothing half-done
    }

    [Fact]
    public void A_full_sync_prunes_the_interfaces_of_deleted_veths()
    {
        var veths = AddVeths("v", 4);
        var live = veths.ToList();
        using var backend = Backend(new LbMapSizes(), interfaces: () => live);
        _lab.InNode(() => backend.Sync([]));
        Assert.Equal(veths.Order(), backend.AttachedInterfaces());

        _lab.InNode(() => _lab.Node.Netlink.LinkDel(veths[0]));
        live.RemoveAt(0);
        backend.RequestFullResync();
        _lab.InNode(() => backend.Sync([]));
        Assert.Equal(live.Order(), backend.AttachedInterfaces());
    }

    [Fact]
    public void A_resize_whose_load_fails_leaves_the_old_pin_with_its_entries()
    {
        var svc = _lab.Service("webpod", "10.96.0.10", 80, [1]);
        using (var small = Backend(new LbMapSizes { Services = 64 }))
        {
            _lab.InNode(() => small.Sync([svc]));
        }

        // A directory where another map's pin should be: libbpf cannot reuse it, and the load fails after lb4_svc's
        // old pin was set aside for the resize.
        var blocker = Path.Combine(_lab.PinDirectory, LbMaps.Maglev);
        BpfFs.Unpin(blocker);
        Directory.CreateDirectory(blocker);
        using (var failing = Backend(new LbMapSizes { Services = 128 }))
        {
            Assert.ThrowsAny<Exception>(() => failing.Loaded);
        }

        Directory.Delete(blocker);
        Assert.False(File.Exists(Path.Combine(_lab.PinDirectory, LbMaps.Services + "-old")));
        using (var old = BpfMap.OpenPinned(Path.Combine(_lab.PinDirectory, LbMaps.Services)))
        {
            Assert.Equal(64u, old.MaxEntries);
            Assert.Equal(2, old.CountKeys());
        }

        using var large = Backend(new LbMapSizes { Services = 128 });
        Assert.Contains("lb4_svc: 64 -> 128 entries, 2 copied, 0 left out", large.Loaded.ResizedMaps);
        Assert.False(File.Exists(Path.Combine(_lab.PinDirectory, LbMaps.Services + "-old")));
    }

    [Fact]
    public void Map_sizes_come_from_the_options_and_a_pin_of_another_size_is_recreated_with_its_entries()
    {
        var svc = _lab.Service("webpod", "10.96.0.10", 80, [1]);
        using (var small = Backend(new LbMapSizes { Services = 64, ConnTrack = 1024 }))
        {
            _lab.InNode(() => small.Sync([svc]));
            Assert.Equal(64u, small.Loaded.Map(LbMaps.Services).MaxEntries);
            Assert.Contains(new LbMapFill(LbMaps.Services, 2, 64), small.MapFill());
            Assert.Contains(new LbMapFill(LbMaps.ConnTrack, 0, 1024), small.MapFill());
        }

        using var large = Backend(new LbMapSizes { Services = 128, ConnTrack = 1024 }, interfaces: () => _lab.HostIfindexes);
        var loaded = large.Loaded;
        Assert.Equal(128u, loaded.Map(LbMaps.Services).MaxEntries);
        Assert.Contains("lb4_svc: 64 -> 128 entries, 2 copied, 0 left out", loaded.ResizedMaps);
        Assert.Contains(LbMaps.ConnTrack, loaded.ReusedMaps);
        Assert.Equal(2, loaded.Map(LbMaps.Services).CountKeys()); // the master and its slot, before any sync

        _lab.InNode(() => large.Sync([svc]));
        Assert.Equal("pod1", _lab.Tcp(2, IPAddress.Parse("10.96.0.10"), 80));
        Assert.Equal("lb4_svc 2/128", large.MapFill(TimeSpan.Zero).Single(f => f.Map == LbMaps.Services).ToString());
    }

    [Fact]
    public void Every_one_of_300_maglev_backends_gets_flows_in_the_kernel()
    {
        var vip = IPAddress.Parse("10.96.0.200");
        var backends = Enumerable.Range(0, 300)
            .Select(i => new BackendAddress(new IPAddress([10, 245, (byte)(i / 200), (byte)(1 + (i % 200))]), 80)).ToArray();
        var svc = new ServicePortState(new ServicePortName("default", "wide", null), new Frontend(vip, Protocol.Udp, 80), SessionAffinity.None, 10800, backends);
        using var backend = Backend(new LbMapSizes(), LbAlgorithm.Maglev, () => _lab.HostIfindexes);
        _lab.InNode(() => backend.Sync([svc]));

        // 6000 flows (one datagram each, distinct source ports); the backends' addresses lead nowhere, the choice is
        // read from the connection-tracking entries the first packet of each flow leaves.
        _lab.Pod(2).Run(() =>
        {
            for (var port = 20000; port < 26000; port++)
            {
                using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                s.Bind(new IPEndPoint(_lab.PodIp(2), port));
                s.SendTo([1], new IPEndPoint(vip, 80));
            }
        });

        var all = backend.Loaded.Map<uint, LbBackend>(LbMaps.Backends).Keys().ToHashSet();
        Assert.Equal(300, all.Count);
        var chosen = backend.Loaded.Map<LbCtKey, LbCtEntry>(LbMaps.ConnTrack).Entries().Select(e => e.Value.BackendId).Where(all.Contains).ToHashSet();
        Assert.True(chosen.SetEquals(all), $"{all.Count - chosen.Count} of 300 backends got no flow of 6000");
    }

    [Fact]
    public void Counting_a_full_connection_tracking_map_walks_every_key_and_the_fill_is_cached()
    {
        using var backend = Backend(new LbMapSizes());
        var ct = backend.Loaded.Map<LbCtKey, LbCtEntry>(LbMaps.ConnTrack);
        for (var i = 0u; i < 262144; i++)
        {
            ct.Update(new LbCtKey { SourceAddress = i, DestinationPort = 80, Protocol = 6 }, new LbCtEntry { BackendId = 1 });
        }

        var sw = System.Diagnostics.Stopwatch.StartNew();
        var n = ct.Map.CountKeys();
        var took = sw.Elapsed;
        output.WriteLine($"lb4_ct: {n} entries counted in {took.TotalMilliseconds:F0} ms");
        Assert.InRange(n, 200_000, 262144); // an LRU map evicts a little before it is full
        Assert.Equal(n, backend.MapFill().Single(f => f.Map == LbMaps.ConnTrack).Entries);

        var deleted = ct.Keys().Take(1000).Count(k => ct.Delete(k));
        Assert.Equal(n, backend.MapFill().Single(f => f.Map == LbMaps.ConnTrack).Entries); // cached for 15 s
        Assert.Equal(n - deleted, backend.MapFill(TimeSpan.Zero).Single(f => f.Map == LbMaps.ConnTrack).Entries);
    }
}
