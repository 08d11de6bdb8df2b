using System.Globalization;
using System.Net;
using System.Text;
using Loom.Core.Model;
using Loom.Datapath.Services;
using Loom.Datapath.Services.Ebpf;
using Loom.Linux.Bpf;
using Loom.Testing.Fakes;

namespace Loom.Datapath.Tests.Ebpf;

/// <summary>
/// The incremental map writer of the eBPF backend against in-memory maps: whatever sequence of syncs ran, the maps say
/// what one full sync of the last desired state on empty maps would say (ids and rev-nat indexes aside), unchanged
/// services cost no write, and drift written behind its back survives incremental syncs but not a full resync.
/// </summary>
public partial class LbServiceSyncTests
{
    private const int TableSize = 251;

    public static TheoryData<int> Algorithms => [0, TableSize];

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void A_sequence_of_incremental_syncs_leaves_what_a_fresh_full_sync_writes(int maglev)
    {
        var maps = NewMaps();
        var sync = new LbServiceSync(Set(maps), maglev);
        var rnd = new Random(7);
        var state = Enumerable.Range(0, 12).Select(i => Port(i, Backends(rnd))).ToList();
        for (var step = 0; step < 60; step++)
        {
            var i = rnd.Next(state.Count + 2);
            switch (rnd.Next(5))
            {
                case 0 when i < state.Count:
                    state.RemoveAt(i);
                    break;
                case 1:
                    state.Add(Port(20 + step, Backends(rnd)));
                    break;
                case 2 when i < state.Count:
                    state[i] = state[i] with { SessionAffinity = state[i].SessionAffinity == SessionAffinity.None ? SessionAffinity.ClientIP : SessionAffinity.None };
                    break;
                default:
                    if (i < state.Count)
                    {
                        state[i] = state[i] with { Backends = Backends(rnd) };
                    }

                    break;
            }

            sync.Sync(state);
            Assert.Equal(FreshFull(state, maglev), Normalize(maps));
        }

        // A new writer over the same maps (a restarted agent) reads them and finds nothing to change.
        var before = Writes(maps);
        new LbServiceSync(Set(maps), maglev).Sync(state);
        Assert.Equal(before, Writes(maps));
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void An_unchanged_sync_writes_nothing_and_one_endpoint_change_writes_only_its_service(int maglev)
    {
        var maps = NewMaps();
        var sync = new LbServiceSync(Set(maps), maglev);
        var state = Enumerable.Range(0, 50).Select(i => Port(i, [Be(i, 1), Be(i, 2)])).ToList();
        sync.Sync(state);
        var before = Writes(maps);
        sync.Sync(state.Select(s => s with { }).ToList()); // equal values, new objects (as every agent pass builds)
        Assert.Equal(before, Writes(maps));

        state[3] = state[3] with { Backends = [Be(3, 1), Be(3, 9)] };
        sync.Sync(state);
        var chunks = maglev == 0 ? 0 : (TableSize + LbMaps.MaglevChunk - 1) / LbMaps.MaglevChunk;
        // backend added, slot 2 rewritten, old backend deleted; the table rewritten with Maglev
        Assert.Equal(before + 3 + chunks, Writes(maps));
        Assert.Equal(FreshFull(state, maglev), Normalize(maps));
    }

    [Fact]
    public void A_backend_shared_by_two_services_stays_until_neither_names_it()
    {
        var maps = NewMaps();
        var sync = new LbServiceSync(Set(maps), 0);
        var shared = new BackendAddress(IPAddress.Parse("10.244.9.9"), 8080);
        sync.Sync([Port(1, [shared]), Port(2, [shared])]);
        var id = Assert.Single(maps.Backends.Entries()).Key;
        maps.ConnTrack.Update(new LbCtKey { SourcePort = 1 }, new LbCtEntry { BackendId = id });
        sync.Sync([Port(1, []), Port(2, [shared])]);
        Assert.Equal(id, Assert.Single(maps.Backends.Entries()).Key);
        Assert.Equal(1, maps.ConnTrack.Count);

        sync.Sync([Port(1, []), Port(2, [])]);
        Assert.Empty(maps.Backends.Entries());
        Assert.Equal(0, maps.ConnTrack.Count); // the flow to the removed backend is forgotten

        sync.Sync([Port(1, [shared])]);
        Assert.NotEqual(id, Assert.Single(maps.Backends.Entries()).Key); // a released id is not handed out again
    }

    [Fact]
    public void Affinity_entries_go_only_for_the_service_that_lost_the_backend()
    {
        var maps = NewMaps();
        var sync = new LbServiceSync(Set(maps), 0);
        var state = new List<ServicePortState> { Port(1, [Be(1, 1), Be(1, 2)]) with { SessionAffinity = SessionAffinity.ClientIP }, Port(2, [Be(2, 1)]) };
        sync.Sync(state);
        var idOf = maps.Backends.Entries().ToDictionary(e => e.Value.EndPoint.Address.ToString(), e => e.Key);
        var rn1 = maps.Services.Lookup(Key(1)).RevNatIndex;
        var rn2 = maps.Services.Lookup(Key(2)).RevNatIndex;
        maps.Affinity.Update(new LbAffinityKey { Client = 1, RevNatIndex = rn1 }, new LbAffinityValue { BackendId = idOf["10.244.1.2"] });
        maps.Affinity.Update(new LbAffinityKey { Client = 2, RevNatIndex = rn1 }, new LbAffinityValue { BackendId = idOf["10.244.1.1"] });
        maps.Affinity.Update(new LbAffinityKey { Client = 3, RevNatIndex = rn2 }, new LbAffinityValue { BackendId = idOf["10.244.2.1"] });

        state[0] = state[0] with { Backends = [Be(1, 1)] };
        sync.Sync(state);
        Assert.Equal([2UL, 3UL], maps.Affinity.Keys().Select(k => k.Client).Order());
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void Drift_survives_incremental_syncs_and_a_full_resync_repairs_it(int maglev)
    {
        var maps = NewMaps();
        var sync = new LbServiceSync(Set(maps), maglev);
        var state = Enumerable.Range(0, 5).Select(i => Port(i, [Be(i, 1), Be(i, 2), Be(i, 3)])).ToList();
        sync.Sync(state);
        var want = Normalize(maps);

        var m0 = maps.Services.Lookup(Key(0));
        maps.Services.Delete(Key(1).WithSlot(2));                                           // a slot lost
        maps.Services.Update(Key(0), m0 with { Count = 1 });                                // a master changed
        maps.Services.Update(Key(7).WithSlot(1), m0 with { Count = 0 });                    // a slot without master
        maps.Backends.Update(999, new LbBackend(IPAddress.Parse("10.1.1.1"), 1, System.Net.Sockets.ProtocolType.Tcp)); // a stray backend
        maps.ReverseNat.Update(999, new LbReverseNat(IPAddress.Parse("10.96.9.9"), 1));     // a stray rev-nat entry
        maps.ReverseNat.Delete(maps.Services.Lookup(Key(2)).RevNatIndex);                  // a rev-nat entry lost
        maps.Maglev.Update(new LbMaglevKey(999, 0), default);                              // a stray table chunk
        var drifted = Normalize(maps);
        Assert.NotEqual(want, drifted);

        sync.Sync(state); // trusts what it wrote
        Assert.Equal(drifted, Normalize(maps));

        sync.Invalidate();
        sync.Sync(state);
        Assert.Equal(want, Normalize(maps));
        Assert.Equal(FreshFull(state, maglev), Normalize(maps));
    }

    [Fact]
    public void A_frontend_given_twice_ends_as_the_last_says_and_the_others_still_go()
    {
        var maps = NewMaps();
        var sync = new LbServiceSync(Set(maps), 0);
        sync.Sync([Port(1, [Be(1, 1)]), Port(2, [Be(2, 1)])]);
        List<ServicePortState> twice = [Port(1, [Be(1, 1)]), Port(1, [Be(1, 2)])]; // as many entries as before, one frontend
        sync.Sync(twice);
        Assert.Equal(FreshFull([twice[1]], 0), Normalize(maps));
    }

    [Fact]
    public void A_service_whose_backends_do_not_fit_is_skipped_and_leaves_nothing()
    {
        var maps = NewMaps(backends: 4);
        var sync = new LbServiceSync(Set(maps), 0);
        sync.Sync([Port(1, [Be(1, 1), Be(1, 2)])]);
        var state = new List<ServicePortState> { Port(1, [Be(1, 1), Be(1, 2)]), Port(2, [Be(2, 1), Be(2, 2), Be(2, 3)]) };
        sync.Sync(state); // the fifth backend does not fit
        var skip = Assert.Single(sync.Skipped);
        Assert.Equal(("ns/svc2", "map-full"), (skip.Service, skip.Code));
        Assert.Contains("lb4_backends is full (4 entries)", skip.Text, StringComparison.Ordinal);
        Assert.False(sync.Adopted); // the next sync reads the maps and tries service 2 again
        Assert.Equal(FreshFull(state.Take(1).ToList(), 0), Normalize(maps));

        state[1] = state[1] with { Backends = [Be(2, 1)] };
        sync.Sync(state);
        Assert.Empty(sync.Skipped);
        Assert.True(sync.Adopted);
        Assert.Equal(FreshFull(state, 0), Normalize(maps));
    }

    private static string FreshFull(IReadOnlyCollection<ServicePortState> state, int maglev)
    {
        var fresh = NewMaps();
        new LbServiceSync(Set(fresh), maglev).Sync(state);
        return Normalize(fresh);
    }

    /// <summary>The maps with backend ids replaced by the backends and rev-nat indexes by their frontends.</summary>
    private static string Normalize(Maps m)
    {
        var be = m.Backends.Entries().ToDictionary(e => e.Key, e => e.Value.ToString());
        var rn = m.ReverseNat.Entries().ToDictionary(e => e.Key, e => e.Value.ToString());
        string B(uint id) => be.GetValueOrDefault(id, $"(missing {id})");
        string R(ushort idx) => rn.GetValueOrDefault(idx, "(missing)");
        var lines = new List<string>();
        foreach (var (k, v) in m.Services.Entries())
        {
            lines.Add(k.Slot == 0
                ? $"svc {k}: count {v.Count} timeout {v.BackendId} flags {v.Flags} maglev {v.MaglevSize} rev-nat {R(v.RevNatIndex)}"
                : $"svc {k}: {B(v.BackendId)} rev-nat {R(v.RevNatIndex)}");
        }

        foreach (var (k, v) in m.Maglev.Entries())
        {
            var sb = new StringBuilder();
            for (var i = 0; i < LbMaps.MaglevChunk; i++)
            {
                sb.Append(v[i] == 0 ? "-" : B(v[i])).Append(' ');
            }

            lines.Add($"maglev {R(k.RevNatIndex)} chunk {k.Chunk}: {sb}");
        }

        lines.AddRange(be.Values.Select(b => "backend " + b));
        lines.AddRange(rn.Values.Select(r => "rev-nat " + r));
        lines.AddRange(m.Affinity.Entries().Select(e => $"affinity {e.Key.Client} {R(e.Key.RevNatIndex)} {B(e.Value.BackendId)}"));
        lines.Sort(StringComparer.Ordinal);
        return string.Join('\n', lines);
    }

    private static List<BackendAddress> Backends(Random rnd) =>
        Enumerable.Range(0, rnd.Next(4)).Select(_ => new BackendAddress(new IPAddress([10, 244, 0, (byte)(1 + rnd.Next(8))]), 8080)).Distinct().ToList();

    private static BackendAddress Be(int svc, int n) => new(new IPAddress([10, 244, (byte)svc, (byte)n]), 8080);

    private static LbServiceKey Key(int i) => new(new IPAddress([10, 96, 0, (byte)i]), 80, System.Net.Sockets.ProtocolType.Tcp, 0);

    private static ServicePortState Port(int i, List<BackendAddress> backends) => new(
        new ServicePortName("ns", "svc" + i.ToString(CultureInfo.InvariantCulture), "http"),
        new Frontend(new IPAddress([10, 96, 0, (byte)i]), Protocol.Tcp, 80),
        SessionAffinity.None,
        10800,
        backends);

    private static int Writes(Maps m) =>
        m.Services.Writes + m.Backends.Writes + m.ReverseNat.Writes + m.Maglev.Writes + m.Affinity.Writes + m.ConnTrack.Writes;

    private static Maps NewMaps(uint backends = 65536, uint services = 65536) => new(
        new("lb4_svc", services),
        new("lb4_backends", backends),
        new("lb4_revnat", 65536),
        new("lb4_maglev", 16384),
        new("lb4_affinity", 65536),
        new("lb4_ct", 65536));

    private static LbMapSet Set(Maps m) => new(m.Services, m.Backends, m.ReverseNat, m.Maglev, m.Affinity, m.ConnTrack);

    private sealed record Maps(
        FakeBpfMap<LbServiceKey, LbService> Services,
        FakeBpfMap<uint, LbBackend> Backends,
        FakeBpfMap<ushort, LbReverseNat> ReverseNat,
        FakeBpfMap<LbMaglevKey, LbMaglevChunk> Maglev,
        FakeBpfMap<LbAffinityKey, LbAffinityValue> Affinity,
        FakeBpfMap<LbCtKey, LbCtEntry> ConnTrack);
}
