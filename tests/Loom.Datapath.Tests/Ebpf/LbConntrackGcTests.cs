using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Loom.Core.Model;
using Loom.Datapath.Services;
using Loom.Datapath.Services.Ebpf;
using Loom.Linux.Bpf;
using Loom.Testing.Fakes;

namespace Loom.Datapath.Tests.Ebpf;

/// <summary>
/// The conntrack GC pass against in-memory maps with a clock of its own (lifetimes in seconds, as the programs'
/// bpf_ktime_get_ns): which entries go, which stay, what it reports; and rev-nat indexes (with backend ids) that are not
/// handed out again while a flow's entries may still name them.
/// </summary>
public class LbConntrackGcTests
{
    private const ulong S = 1_000_000_000;
    private const ushort Svc = 7;
    private static readonly uint ClientIp = LbMaps.ToNetwork(IPAddress.Parse("10.244.1.5"));
    private static readonly uint VipIp = LbMaps.ToNetwork(IPAddress.Parse("10.96.0.7"));
    private static readonly uint BackendIp = LbMaps.ToNetwork(IPAddress.Parse("10.244.2.9"));
    private static readonly uint NodeIp = LbMaps.ToNetwork(IPAddress.Parse("192.168.1.1"));

    private readonly FakeBpfMap<LbCtKey, LbCtEntry> _ct = new("lb4_ct", 65536);
    private readonly FakeBpfMap<LbCtKey, LbSnatEntry> _snat = new("lb4_snat", 65536);
    private readonly FakeBpfMap<ushort, LbReverseNat> _revNat = new("lb4_revnat", 65536);
    private readonly LbConntrackGc _gc;

    public LbConntrackGcTests()
    {
        _revNat.Update(Svc, new LbReverseNat(IPAddress.Parse("10.96.0.7"), 80));
        _gc = new LbConntrackGc(_ct, _snat, _revNat, new LbConntrackLifetimes());
    }

    [Theory]
    [InlineData(ProtocolType.Tcp, 0, 59, true)]                      // SYN only: 60 s
    [InlineData(ProtocolType.Tcp, 0, 61, false)]
    [InlineData(ProtocolType.Tcp, LbMaps.CtEstablished, 21599, true)] // established: 6 h
    [InlineData(ProtocolType.Tcp, LbMaps.CtEstablished, 21601, false)]
    [InlineData(ProtocolType.Tcp, LbMaps.CtEstablished | LbMaps.CtClosing, 9, true)] // FIN or RST seen: 10 s
    [InlineData(ProtocolType.Tcp, LbMaps.CtEstablished | LbMaps.CtClosing, 11, false)]
    [InlineData(ProtocolType.Udp, 0, 59, true)]                      // UDP: 60 s
    [InlineData(ProtocolType.Udp, 0, 61, false)]
    public void A_flow_lives_for_the_lifetime_its_flags_give_after_its_last_packet(ProtocolType proto, int flags, int quietSeconds, bool kept)
    {
        Flow(proto, 40000, seen: 1000 * S, (ushort)flags);
        var r = _gc.Run((1000 + (ulong)quietSeconds) * S);
        Assert.Equal(kept ? 2 : 0, _ct.Count);
        Assert.Equal(kept ? 0 : 2, r.ConnTrackDeleted);
        Assert.Equal(kept ? 2 : 0, r.ConnTrackLeft);
    }

    [Fact]
    public void Replies_keep_a_flow_alive_and_a_reverse_entry_goes_with_its_forward_one()
    {
        Flow(ProtocolType.Udp, 40001, seen: 1000 * S, 0, replySeen: 1050 * S); // client quiet, the backend still sending
        _gc.Run(1100 * S);
        Assert.Equal(2, _ct.Count);
        _gc.Run(1111 * S);
        Assert.Equal(0, _ct.Count);
    }

    [Fact]
    public void An_entry_written_again_after_the_gcs_snapshot_is_not_deleted()
    {
        // A SYN reusing a closed flow's client port rewrites its entries (another backend) while the pass is judging
        // the old ones; likewise a new node-port flow on a freed NAT port's SNAT entries.
        Flow(ProtocolType.Tcp, 40010, seen: 1000 * S, LbMaps.CtEstablished | LbMaps.CtClosing);
        SnatPair(ProtocolType.Udp, 40011, 50000, seen: 1000 * S);
        var ct = new Rewriting<LbCtEntry>(_ct, () => Flow(ProtocolType.Tcp, 40010, seen: 1100 * S, 0, backend: 9));
        var snat = new Rewriting<LbSnatEntry>(_snat, () => SnatPair(ProtocolType.Udp, 40011, 50000, seen: 1100 * S));
        var r = new LbConntrackGc(ct, snat, _revNat, new LbConntrackLifetimes()).Run(1100 * S);

        Assert.Equal(0, r.Deleted);
        Assert.Equal(2, _ct.Count);
        Assert.All(_ct.Entries(), e => Assert.Equal(9u, e.Value.BackendId));
        Assert.Contains(9u, r.BackendsInUse);
        Assert.Equal(2, _snat.Count);
        Assert.Equal(2, r.SnatLeft);
    }

    [Fact]
    public void A_reverse_entry_without_a_forward_one_goes_after_a_grace_second_and_one_of_an_earlier_choice_by_its_lifetime()
    {
        _ct.Update(Key(ProtocolType.Udp, 40002, 1, BackendIp, 8080), Entry(5, 1000 * S, 0)); // orphan, dir 1
        Flow(ProtocolType.Tcp, 40003, seen: 1000 * S, LbMaps.CtEstablished, backend: 6);
        _ct.Update(Key(ProtocolType.Tcp, 40003, 1, LbMaps.ToNetwork(IPAddress.Parse("10.244.3.3")), 8080), Entry(5, 1000 * S, LbMaps.CtClosing));

        var r = _gc.Run(1000 * S + (S / 2));
        Assert.Equal(4, _ct.Count); // the orphan may be half-written: the programs write the forward entry first
        r = _gc.Run(1005 * S);
        Assert.Equal(3, _ct.Count);
        Assert.Equal(1, r.ConnTrackDeleted);
        _gc.Run(1011 * S); // the earlier choice's closing reverse entry: 10 s
        Assert.Equal(2, _ct.Count);
        Assert.All(_ct.Entries(), e => Assert.Equal(6u, e.Value.BackendId));
    }

    [Fact]
    public void Entries_of_a_service_that_is_gone_go_at_once_and_what_is_left_names_its_ids()
    {
        Flow(ProtocolType.Tcp, 40004, seen: 1000 * S, LbMaps.CtEstablished, backend: 5);
        Flow(ProtocolType.Tcp, 40005, seen: 1000 * S, LbMaps.CtEstablished, backend: 9, revNat: 8);
        var r = _gc.Run(1001 * S);
        Assert.Equal(2, r.ConnTrackDeleted);
        Assert.Equal(new HashSet<ushort> { Svc }, r.RevNatInUse);
        Assert.Equal(new HashSet<uint> { 5 }, r.BackendsInUse);
    }

    [Fact]
    public void A_snat_pair_lives_with_its_flow_and_the_closing_lifetime_after_it()
    {
        Flow(ProtocolType.Tcp, 40006, seen: 1000 * S, LbMaps.CtEstablished);
        SnatPair(ProtocolType.Tcp, 40006, 61000, 1000 * S);
        SnatPair(ProtocolType.Udp, 40007, 61001, 1000 * S);
        _snat.Update(new LbCtKey { SourceAddress = BackendIp, DestinationAddress = NodeIp, SourcePort = LbMaps.PortToNetwork(8080), DestinationPort = LbMaps.PortToNetwork(61002), Protocol = 6, Direction = LbMaps.SnatIn },
            new LbSnatEntry { Address = ClientIp, Port = LbMaps.PortToNetwork(40008), RevNatIndex = Svc, LastSeenNs = 1000 * S }); // IN without OUT

        var r = _gc.Run(1070 * S);
        Assert.Equal(2, _snat.Count); // the TCP pair: its flow is established; the UDP pair (60 s) and the lone IN half went
        Assert.Equal(3, r.SnatDeleted);
        Assert.Contains(Svc, r.RevNatInUse);

        foreach (var k in _ct.Keys())
        {
            _ct.Delete(k); // the flow's entries are gone (evicted): the pair follows after the closing lifetime
        }

        _gc.Run(1071 * S);
        Assert.Equal(0, _snat.Count);
    }

    [Fact]
    public void A_freed_rev_nat_index_is_not_handed_out_while_an_entry_names_it()
    {
        var maps = new LbMapSet(new FakeBpfMap<LbServiceKey, LbService>("lb4_svc", 65536), new FakeBpfMap<uint, LbBackend>("lb4_backends", 65536),
            _revNat, new FakeBpfMap<LbMaglevKey, LbMaglevChunk>("lb4_maglev", 65536), new FakeBpfMap<LbAffinityKey, LbAffinityValue>("lb4_affinity", 65536), _ct, _snat);
        _revNat.Delete(Svc);
        var sync = new LbServiceSync(maps, 0);
        sync.Sync([Port(1)]);
        var first = RevNatOf(maps, 1);
        SnatPair(ProtocolType.Tcp, 40009, 61003, 1000 * S, first); // a node-port flow of service 1 through a remote backend

        sync.Sync([]);
        Assert.Equal(1, sync.Quarantined);
        sync.Sync([Port(2)]);
        Assert.NotEqual(first, RevNatOf(maps, 2)); // the lowest free index, were it not for the SNAT pair

        sync.Collected(new LbConntrackGc(_ct, _snat, _revNat, new LbConntrackLifetimes()).Run(1001 * S).RevNatInUse);
        Assert.Equal(0, _snat.Count); // its service is gone: so are its entries
        Assert.Equal(0, sync.Quarantined);
        sync.Sync([Port(2), Port(3)]);
        Assert.Equal(first, RevNatOf(maps, 3));
    }

    [Fact]
    public void After_a_restart_ids_named_by_conntrack_entries_are_not_handed_out_before_a_gc_pass()
    {
        var maps = new LbMapSet(new FakeBpfMap<LbServiceKey, LbService>("lb4_svc", 65536), new FakeBpfMap<uint, LbBackend>("lb4_backends", 65536),
            _revNat, new FakeBpfMap<LbMaglevKey, LbMaglevChunk>("lb4_maglev", 65536), new FakeBpfMap<LbAffinityKey, LbAffinityValue>("lb4_affinity", 65536), _ct, _snat);
        _revNat.Delete(Svc);
        _ct.Update(Key(ProtocolType.Tcp, 40010, 0, VipIp, 80), Entry(41, 1000 * S, 0, revNat: 1)); // a previous run's flow

        var sync = new LbServiceSync(maps, 0);
        sync.Sync([Port(1)]);
        Assert.NotEqual((ushort)1, RevNatOf(maps, 1));
        Assert.True(maps.Backends.Entries().Single().Key > 41, "a backend id a flow still names was handed out again");
    }

    private static ushort RevNatOf(LbMapSet maps, int i) =>
        maps.Services.Lookup(new LbServiceKey(new IPAddress([10, 96, 0, (byte)i]), 80, ProtocolType.Tcp, 0)).RevNatIndex;

    private static ServicePortState Port(int i) => new(
        new ServicePortName("ns", "svc" + i.ToString(CultureInfo.InvariantCulture), "http"),
        new Frontend(new IPAddress([10, 96, 0, (byte)i]), Protocol.Tcp, 80),
        SessionAffinity.None,
        10800,
        [new BackendAddress(new IPAddress([10, 244, 0, (byte)i]), 8080)]);

    /// <summary>A flow's forward (client -> VIP) and reverse (client -> backend) entries, as lb_flow writes them.</summary>
    private void Flow(ProtocolType proto, int clientPort, ulong seen, ushort flags, ulong? replySeen = null, uint backend = 5, ushort revNat = Svc)
    {
        _ct.Update(Key(proto, clientPort, 0, VipIp, 80), Entry(backend, seen, flags, revNat));
        _ct.Update(Key(proto, clientPort, 1, BackendIp, 8080), Entry(backend, replySeen ?? seen, flags, revNat));
    }

    private void SnatPair(ProtocolType proto, int clientPort, int natPort, ulong seen, ushort revNat = Svc)
    {
        _snat.Update(new LbCtKey { SourceAddress = ClientIp, DestinationAddress = BackendIp, SourcePort = LbMaps.PortToNetwork(clientPort), DestinationPort = LbMaps.PortToNetwork(8080), Protocol = (byte)proto, Direction = LbMaps.SnatOut },
            new LbSnatEntry { Address = NodeIp, Port = LbMaps.PortToNetwork(natPort), RevNatIndex = revNat, LastSeenNs = seen });
        _snat.Update(new LbCtKey { SourceAddress = BackendIp, DestinationAddress = NodeIp, SourcePort = LbMaps.PortToNetwork(8080), DestinationPort = LbMaps.PortToNetwork(natPort), Protocol = (byte)proto, Direction = LbMaps.SnatIn },
            new LbSnatEntry { Address = ClientIp, Port = LbMaps.PortToNetwork(clientPort), RevNatIndex = revNat, LastSeenNs = seen });
    }

    private static LbCtKey Key(ProtocolType proto, int clientPort, int dir, uint daddr, int dport) => new()
    {
        SourceAddress = ClientIp,
        DestinationAddress = daddr,
        SourcePort = LbMaps.PortToNetwork(clientPort),
        DestinationPort = LbMaps.PortToNetwork(dport),
        Protocol = (byte)proto,
        Direction = (byte)dir,
    };

    private static LbCtEntry Entry(uint backend, ulong seen, ushort flags, ushort revNat = Svc) =>
        new() { BackendId = backend, RevNatIndex = revNat, Flags = flags, LastSeenNs = seen };

    /// <summary>A map whose entries <paramref name="write"/> rewrites right after the GC took its snapshot, as the programs may.</summary>
    private sealed class Rewriting<TValue>(FakeBpfMap<LbCtKey, TValue> map, Action write) : IBpfMap<LbCtKey, TValue>
        where TValue : unmanaged
    {
        public int Count => map.Count;

        public uint MaxEntries => map.MaxEntries;

        public IReadOnlyList<KeyValuePair<LbCtKey, TValue>> Entries()
        {
            var snapshot = map.Entries();
            write();
            return snapshot;
        }

        public bool TryLookup(in LbCtKey key, out TValue value) => map.TryLookup(key, out value);

        public TValue Lookup(in LbCtKey key) => map.Lookup(key);

        public void Update(in LbCtKey key, in TValue value, BpfUpdate flags = BpfUpdate.Any) => map.Update(key, value, flags);

        public bool Delete(in LbCtKey key) => map.Delete(key);

        public IReadOnlyList<LbCtKey> Keys() => map.Keys();
    }
}
