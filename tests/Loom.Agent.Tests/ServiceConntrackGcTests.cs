using System.Net;
using System.Net.Sockets;
using Loom.Agent.Services;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Datapath.Services;
using Loom.Datapath.Services.Ebpf;
using Loom.Linux;
using Loom.Linux.Bpf;
using Loom.Store;
using Loom.Testing;

namespace Loom.Agent.Tests;

/// <summary>
/// The agent's conntrack GC pass through the services reconciler's target, on a real eBPF backend (its maps pinned under
/// a per-run bpffs directory, every call made in a namespace of the test's own, no program attached): it collects
/// expired lb4_ct entries and keeps live ones; on other backends it does nothing.
/// </summary>
public sealed class ServiceConntrackGcTests
{
    [Fact]
    public async Task A_gc_pass_on_the_ebpf_backend_deletes_expired_flows_and_keeps_live_ones()
    {
        using var ns = new TestNetns("ctgc");
        var pins = Path.Combine(BpfFs.DefaultRoot, RunPrefix.For("loom-test-") + "agent-ctgc");
        var ebpf = new EbpfServiceBackend(new EbpfServiceOptions { PinDirectory = pins });
        var port = new ServicePortState(new ServicePortName("default", "dns", "dns"), new Frontend(IPAddress.Parse("10.96.0.10"), Protocol.Udp, 53),
            SessionAffinity.None, 0, [new BackendAddress(IPAddress.Parse("10.244.1.5"), 53)]);
        var desired = new Dictionary<string, ServicePortState> { ["default/dns:dns/UDP"] = port };
        await using var store = MemoryStore.Create();
        using var ops = new ServiceBackendOperations(k => k == ServiceProxyMode.Ebpf ? ebpf : new RecordingServiceBackend(k),
            ServiceProxyMode.Ebpf, () => desired, new AgentLoops(store, TextWriter.Null));
        try
        {
            ns.Run(() => ops.PruneAsync(desired, default).GetAwaiter().GetResult());
            var ct = ebpf.Loaded.Map<LbCtKey, LbCtEntry>(LbMaps.ConnTrack);
            var master = ebpf.Loaded.Map<LbServiceKey, LbService>(LbMaps.Services).Lookup(new LbServiceKey(IPAddress.Parse("10.96.0.10"), 53, ProtocolType.Udp, 0));
            var backendId = ebpf.Loaded.Map<uint, LbBackend>(LbMaps.Backends).Keys().Single();
            var now = LbConntrackGc.MonotonicNs();
            Flow(ct, 40000, backendId, master.RevNatIndex, now - (61UL * 1_000_000_000)); // UDP quiet for 61 s: expired
            Flow(ct, 40001, backendId, master.RevNatIndex, now);

            var r = ns.Run(() => ops.CollectConntrack());
            Assert.NotNull(r);
            Assert.Equal(2, r.ConnTrackDeleted);
            Assert.Equal(2, r.ConnTrackLeft);
            Assert.All(ct.Keys(), k => Assert.Equal(LbMaps.PortToNetwork(40001), k.SourcePort));
            Assert.Equal(TimeSpan.FromSeconds(30), ops.ConntrackGcInterval);
        }
        finally
        {
            ns.Run(ebpf.Flush);
        }
    }

    [Fact]
    public async Task A_gc_pass_on_another_backend_does_nothing()
    {
        await using var store = MemoryStore.Create();
        var desired = new Dictionary<string, ServicePortState>();
        using var ops = new ServiceBackendOperations(k => new RecordingServiceBackend(k), ServiceProxyMode.Nftables, () => desired, new AgentLoops(store, TextWriter.Null));
        await ops.PruneAsync(desired, default);
        Assert.Null(ops.CollectConntrack());
    }

    private static void Flow(IBpfMap<LbCtKey, LbCtEntry> ct, int clientPort, uint backend, ushort revNat, ulong seen)
    {
        var key = new LbCtKey
        {
            SourceAddress = LbMaps.ToNetwork(IPAddress.Parse("10.244.2.7")),
            DestinationAddress = LbMaps.ToNetwork(IPAddress.Parse("10.96.0.10")),
            SourcePort = LbMaps.PortToNetwork(clientPort),
            DestinationPort = LbMaps.PortToNetwork(53),
            Protocol = (byte)ProtocolType.Udp,
        };
        var entry = new LbCtEntry { BackendId = backend, RevNatIndex = revNat, LastSeenNs = seen };
        ct.Update(key, entry);
        ct.Update(key with { DestinationAddress = LbMaps.ToNetwork(IPAddress.Parse("10.244.1.5")), Direction = 1 }, entry);
    }
}
