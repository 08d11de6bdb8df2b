using Loom.Core.Model;
using Loom.Datapath.Services;
using Loom.Datapath.Services.Ebpf;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Tests.Ebpf;

/// <summary>
/// The map writer at the maps' limits (small in-memory maps with the kernel's E2BIG): removals go before writes, so a
/// full lb4_svc never keeps a deleted service's entries; a service that does not fit is skipped with the map and its
/// limit named while the rest of the pass completes; Maglev tables name every backend past the 256 of one chunk.
/// </summary>
public partial class LbServiceSyncTests
{
    public static TheoryData<bool> Paths => [false, true];

    [Theory]
    [MemberData(nameof(Paths))]
    public void Removals_go_first_so_a_full_services_map_still_drops_deleted_services(bool incremental)
    {
        var maps = NewMaps(services: 8);
        var sync = new LbServiceSync(Set(maps), 0);
        var one = Port(1, [Be(1, 1), Be(1, 2)]);
        var two = Port(2, [Be(2, 1), Be(2, 2)]);
        var three = Port(3, [Be(3, 1), Be(3, 2), Be(3, 3)]);
        sync.Sync([one, two]); // 6 of 8 entries
        if (incremental)
        {
            sync.Update([three], [one]);
        }
        else
        {
            sync.Sync([two, three]); // 4 more entries fit only once service 1's 3 are gone
        }

        Assert.Empty(sync.Skipped);
        Assert.True(sync.Adopted);
        Assert.False(maps.Services.TryLookup(Key(1), out _));
        Assert.Equal(FreshFull([two, three], 0), Normalize(maps));
    }

    [Theory]
    [MemberData(nameof(Algorithms))]
    public void A_new_service_that_does_not_fit_is_skipped_whole_and_the_rest_of_the_pass_completes(int maglev)
    {
        var maps = NewMaps(services: 8);
        var sync = new LbServiceSync(Set(maps), maglev);
        var one = Port(1, [Be(1, 1), Be(1, 2)]);
        var gone = Port(4, [Be(4, 1)]);
        sync.Sync([one, gone]); // 5 of 8
        var big = Port(2, [.. Enumerable.Range(1, 6).Select(n => Be(2, n))]); // 7 entries: never fits
        var small = Port(3, [Be(3, 1)]);
        sync.Sync([one, big, small]);

        var skip = Assert.Single(sync.Skipped);
        Assert.Equal(("ns/svc2", "map-full"), (skip.Service, skip.Code));
        Assert.Contains("lb4_svc is full (8 entries)", skip.Text, StringComparison.Ordinal);
        Assert.False(sync.Adopted); // the next sync reads the maps and tries service 2 again
        // Service 4's removal, service 3's write and the backends' cleanup all happened; nothing of service 2 is left.
        Assert.Equal(FreshFull([one, small], maglev), Normalize(maps));

        sync.Sync([one, big with { Backends = [Be(2, 1), Be(2, 2)] }, small]);
        Assert.Empty(sync.Skipped);
        Assert.Equal(FreshFull([one, big with { Backends = [Be(2, 1), Be(2, 2)] }, small], maglev), Normalize(maps));
    }

    [Fact]
    public void A_changed_service_that_no_longer_fits_keeps_live_backends_and_the_next_sync_reads_the_maps()
    {
        var maps = NewMaps(services: 8);
        var sync = new LbServiceSync(Set(maps), 0);
        var one = Port(1, [Be(1, 1)]);
        var two = Port(2, [Be(2, 1), Be(2, 2), Be(2, 3), Be(2, 4)]);
        sync.Sync([one, two]); // 7 of 8
        sync.Update([one with { Backends = [Be(1, 5), Be(1, 6), Be(1, 7)] }], []);

        Assert.Equal("ns/svc1", Assert.Single(sync.Skipped).Service);
        Assert.False(sync.Adopted); // memory no longer says what the maps hold
        Assert.DoesNotContain("missing", Normalize(maps), StringComparison.Ordinal); // every slot names a backend that exists

        sync.Sync([one, two]);
        Assert.True(sync.Adopted);
        Assert.Equal(FreshFull([one, two], 0), Normalize(maps));
    }

    [Fact]
    public void A_maglev_table_names_every_one_of_300_backends()
    {
        var maps = NewMaps();
        var sync = new LbServiceSync(Set(maps), Maglev.DefaultTableSize);
        var backends = Enumerable.Range(0, 300).Select(i => new BackendAddress(new System.Net.IPAddress([10, 245, (byte)(i / 200), (byte)(1 + (i % 200))]), 8080)).ToList();
        sync.Sync([Port(1, backends)]);

        var slots = new Dictionary<uint, int>();
        foreach (var (_, chunk) in maps.Maglev.Entries())
        {
            for (var i = 0; i < LbMaps.MaglevChunk; i++)
            {
                slots[chunk[i]] = slots.GetValueOrDefault(chunk[i]) + 1;
            }
        }

        slots.Remove(0); // the last chunk's slots past M
        Assert.Equal(maps.Backends.Keys().Order(), slots.Keys.Order());
        Assert.Equal(300, slots.Count);
        Assert.InRange(slots.Values.Min(), (Maglev.DefaultTableSize / 300) - 2, Maglev.DefaultTableSize);
        Assert.Equal(Maglev.DefaultTableSize, slots.Values.Sum());
    }

    [Theory]
    [InlineData(nameof(LbMapSizes.ConnTrack), 5, "connTrack (lb4_ct)")]
    [InlineData(nameof(LbMapSizes.Interfaces), 0, "interfaces (lb4_ifaces)")]
    [InlineData(nameof(LbMapSizes.Services), (1 << 24) + 1, "services (lb4_svc)")]
    public void A_bad_map_size_is_refused_up_front_naming_the_setting_and_the_map(string setting, int size, string named)
    {
        var sizes = setting switch
        {
            nameof(LbMapSizes.ConnTrack) => new LbMapSizes { ConnTrack = size },
            nameof(LbMapSizes.Interfaces) => new LbMapSizes { Interfaces = size },
            _ => new LbMapSizes { Services = size },
        };
        var e = Assert.Throws<ArgumentException>(() => new EbpfServiceBackend(new EbpfServiceOptions { MapSizes = sizes }));
        Assert.Contains(named, e.Message, StringComparison.Ordinal);
        Assert.Contains("between 16 and 16777216", e.Message, StringComparison.Ordinal);
    }
}
