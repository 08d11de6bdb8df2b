using System.Net;
using Loom.Core.Ipam;

namespace Loom.Core.Tests.Ipam;

public sealed class IpAllocatorTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string NetDir => Path.Combine(_dir.Path, "testnet");

    private IIpAllocator Open(params string[] subnets) => IpAllocator.Open(Configs.Simple(_dir.Path, subnets));

    private IIpAllocator OpenJson(string rangesJson)
        => IpAllocator.Open(Configs.Parse($$"""{"dataDir":"{{_dir.Path}}","ranges":{{rangesJson}}}"""));

    private static Attachment Pod(int n, string ifName = "eth0") => new($"container-{n}", ifName);

    private static string One(IIpAllocator allocator, Attachment attachment, params string[] requested)
        => IpMath.Format(Assert.Single(allocator.Allocate(attachment, [.. requested.Select(IPAddress.Parse)])).Address);

    [Fact]
    public void Allocates_round_robin_skipping_gateway_then_wraps_to_released_address()
    {
        using var allocator = Open("10.0.0.0/29");
        Assert.Equal(["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"], Enumerable.Range(0, 5).Select(i => One(allocator, Pod(i))));

        var full = Assert.Throws<IpamException>(() => allocator.Allocate(Pod(9)));
        Assert.Equal(IpamErrorKind.Exhausted, full.Kind);
        Assert.Contains("range set 0 (10.0.0.1-10.0.0.6)", full.Message, StringComparison.Ordinal);
        Assert.False(allocator.HasFreeAddress());

        allocator.Release(Pod(1));
        Assert.True(allocator.HasFreeAddress());
        Assert.Equal("10.0.0.3", One(allocator, Pod(9)));
    }

    [Fact]
    public void Released_address_is_not_reused_until_the_range_wraps()
    {
        using var allocator = Open("10.0.0.0/29");
        Assert.Equal("10.0.0.2", One(allocator, Pod(0)));
        allocator.Release(Pod(0));
        Assert.Equal("10.0.0.3", One(allocator, Pod(1)));
    }

    [Theory]
    [InlineData(null, "10.0.0.2")]
    [InlineData("10.0.0.3", "10.0.0.4")]
    [InlineData("10.0.0.6", "10.0.0.2")] // rangeEnd wraps to rangeStart, gateway skipped
    [InlineData("10.9.9.9", "10.0.0.2")] // cursor outside the set (config changed): start over
    public void Starts_after_last_reserved_ip(string? lastReserved, string expected)
    {
        Directory.CreateDirectory(NetDir);
        if (lastReserved is not null)
        {
            File.WriteAllText(Path.Combine(NetDir, "last_reserved_ip.0"), lastReserved);
        }

        using var allocator = Open("10.0.0.0/29");
        Assert.Equal(expected, One(allocator, Pod(0)));
    }

    [Fact]
    public void Walks_several_ranges_of_a_set_in_order()
    {
        using var allocator = OpenJson("""[[{"subnet":"192.168.1.0/29","rangeStart":"192.168.1.5"},{"subnet":"192.168.2.0/30"}]]""");
        Assert.Equal(["192.168.1.5", "192.168.1.6", "192.168.2.2"], Enumerable.Range(0, 3).Select(i => One(allocator, Pod(i))));
        Assert.Equal(IpamErrorKind.Exhausted, Assert.Throws<IpamException>(() => allocator.Allocate(Pod(3))).Kind);
    }

    [Fact]
    public void Writes_host_local_files()
    {
        using var allocator = Open("10.0.0.0/24", "fd00::/120");
        var result = allocator.Allocate(new Attachment("abc123", "eth0"));

        Assert.Equal(["10.0.0.2/24", "fd00::2/120"], result.Select(r => r.Cidr));
        Assert.Equal(IPAddress.Parse("fd00::1"), result[1].Gateway);
        Assert.Equal("abc123\r\neth0", File.ReadAllText(Path.Combine(NetDir, "10.0.0.2")));
        Assert.Equal("abc123\r\neth0", File.ReadAllText(Path.Combine(NetDir, "fd00::2")));
        Assert.Equal("10.0.0.2", File.ReadAllText(Path.Combine(NetDir, "last_reserved_ip.0")));
        Assert.Equal("fd00::2", File.ReadAllText(Path.Combine(NetDir, "last_reserved_ip.1")));
        Assert.True(File.Exists(Path.Combine(NetDir, "lock")));
    }

    [Fact]
    public void Files_written_by_host_local_are_respected()
    {
        Directory.CreateDirectory(NetDir);
        File.WriteAllText(Path.Combine(NetDir, "10.0.0.2"), "other\r\neth0");
        File.WriteAllText(Path.Combine(NetDir, "10.0.0.3"), "legacy-id");

        using var allocator = Open("10.0.0.0/24");
        Assert.Equal("10.0.0.4", One(allocator, Pod(0)));
        Assert.Contains(new AllocationRecord(IPAddress.Parse("10.0.0.3"), "legacy-id", ""), allocator.ListAllocations());

        // host-local's fallback: an id-only file belongs to that container whatever the ifname.
        Assert.Equal("10.0.0.3", IpMath.Format(Assert.Single(allocator.Release(new Attachment("legacy-id", "eth0"))).Address));
    }

    [Fact]
    public void Requested_ip_is_honoured_and_checked()
    {
        using var allocator = Open("10.0.0.0/24");
        Assert.Equal("10.0.0.50", One(allocator, Pod(0), "10.0.0.50"));
        Assert.Equal("10.0.0.50", File.ReadAllText(Path.Combine(NetDir, "last_reserved_ip.0")));

        var taken = Assert.Throws<IpamException>(() => allocator.Allocate(Pod(1), [IPAddress.Parse("10.0.0.50")]));
        Assert.Equal(IpamErrorKind.RequestedIpUnavailable, taken.Kind);
        Assert.Contains("already allocated to container container-0 (eth0)", taken.Message, StringComparison.Ordinal);

        var gateway = Assert.Throws<IpamException>(() => allocator.Allocate(Pod(1), [IPAddress.Parse("10.0.0.1")]));
        Assert.Contains("is the gateway", gateway.Message, StringComparison.Ordinal);

        var outside = Assert.Throws<IpamException>(() => allocator.Allocate(Pod(1), [IPAddress.Parse("10.0.1.1")]));
        Assert.Equal(IpamErrorKind.RequestedIpUnavailable, outside.Kind);
        Assert.Contains("not in any range set", outside.Message, StringComparison.Ordinal);

        var two = Assert.Throws<IpamException>(() => allocator.Allocate(Pod(1), [IPAddress.Parse("10.0.0.7"), IPAddress.Parse("10.0.0.8")]));
        Assert.Contains("only one address per range set", two.Message, StringComparison.Ordinal);

        Assert.Single(allocator.ListAllocations());
    }

    [Fact]
    public void Requested_reserved_address_inside_an_explicit_range_is_refused()
    {
        using var allocator = OpenJson("""[[{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.0","rangeEnd":"10.0.0.255"}]]""");
        var error = Assert.Throws<IpamException>(() => allocator.Allocate(Pod(0), [IPAddress.Parse("10.0.0.255")]));
        Assert.Contains("broadcast", error.Message, StringComparison.Ordinal);
        Assert.Equal("10.0.0.2", One(allocator, Pod(0))); // .0 and .1 skipped
    }

    [Fact]
    public void Repeated_add_returns_the_same_addresses()
    {
        using var allocator = Open("10.0.0.0/24", "fd00::/64");
        var first = allocator.Allocate(Pod(0));
        var again = allocator.Allocate(Pod(0));
        Assert.Equal(first, again);
        Assert.Equal(2, allocator.ListAllocations().Count);

        // Same container, another interface: a different attachment.
        var second = allocator.Allocate(Pod(0, "net1"));
        Assert.NotEqual(first[0].Address, second[0].Address);

        // Asking for a different address than the one held is refused, not silently ignored.
        var error = Assert.Throws<IpamException>(() => allocator.Allocate(Pod(0), [IPAddress.Parse("10.0.0.99")]));
        Assert.Contains("already holds 10.0.0.2", error.Message, StringComparison.Ordinal);
        Assert.Equal(first, allocator.Allocate(Pod(0), [IPAddress.Parse("10.0.0.2")]));
    }

    [Fact]
    public void Multi_set_allocation_is_all_or_nothing()
    {
        using (var v6Only = Open("fd00::/126"))
        {
            v6Only.Allocate(Pod(100));
            v6Only.Allocate(Pod(101));
        }

        using var allocator = Open("10.0.0.0/24", "fd00::/126");
        var error = Assert.Throws<IpamException>(() => allocator.Allocate(Pod(0)));
        Assert.Equal(IpamErrorKind.Exhausted, error.Kind);
        Assert.Contains("range set 1 (fd00::1-fd00::3)", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(allocator.ListAllocations(), r => r.ContainerId == "container-0");
        Assert.False(allocator.HasFreeAddress());
    }

    [Fact]
    public void Rollback_keeps_addresses_held_before_the_call()
    {
        using (var v4Only = Open("10.0.0.0/24"))
        {
            v4Only.Allocate(Pod(0));
        }

        using var allocator = Open("10.0.0.0/24", "fd00::/64");
        Assert.Throws<IpamException>(() => allocator.Allocate(Pod(0), [IPAddress.Parse("fd00::1")])); // gateway
        Assert.Equal("10.0.0.2", IpMath.Format(Assert.Single(allocator.Find(Pod(0))).Address));
    }

    [Fact]
    public void Release_is_idempotent_and_per_interface()
    {
        using var allocator = Open("10.0.0.0/24", "fd00::/64");
        allocator.Allocate(Pod(0));
        allocator.Allocate(Pod(0, "net1"));

        Assert.Equal(2, allocator.Release(Pod(0)).Count);
        Assert.Empty(allocator.Release(Pod(0)));
        Assert.Empty(allocator.Release(Pod(42)));
        Assert.Equal(2, allocator.Find(Pod(0, "net1")).Count);
        Assert.Empty(allocator.Find(Pod(0)));
    }

    [Fact]
    public void Gc_releases_everything_not_attached()
    {
        using var allocator = Open("10.0.0.0/24");
        for (var i = 0; i < 5; i++)
        {
            allocator.Allocate(Pod(i));
        }

        var released = allocator.GarbageCollect([Pod(1), Pod(3), new Attachment("  container-4 ", "eth0")]);
        Assert.Equal(["container-0", "container-2"], released.Select(r => r.ContainerId).Order());
        Assert.Equal(["container-1", "container-3", "container-4"], allocator.ListAllocations().Select(r => r.ContainerId).Order());
        Assert.Empty(allocator.GarbageCollect([Pod(1), Pod(3), Pod(4)]));
    }

    [Fact]
    public void Gc_reclaims_files_left_by_a_crash()
    {
        Directory.CreateDirectory(NetDir);
        File.WriteAllText(Path.Combine(NetDir, "10.0.0.7"), ""); // died between O_EXCL create and write
        File.WriteAllText(Path.Combine(NetDir, "10.0.0.8"), "gone\r\neth0"); // container vanished without DEL
        File.WriteAllText(Path.Combine(NetDir, "10.0.0.9"), "alive"); // legacy id-only file, still attached

        using var allocator = Open("10.0.0.0/24");
        var released = allocator.GarbageCollect([new Attachment("alive", "eth0")]);
        Assert.Equal(["10.0.0.7", "10.0.0.8"], released.Select(r => IpMath.Format(r.Address)).Order());
        Assert.Equal("10.0.0.9", IpMath.Format(Assert.Single(allocator.ListAllocations()).Address));
        Assert.True(File.Exists(Path.Combine(NetDir, "lock")));
    }

    [Fact]
    public void A_new_instance_sees_earlier_allocations()
    {
        IReadOnlyList<IpAllocation> first;
        using (var allocator = Open("10.0.0.0/24", "fd00::/64"))
        {
            first = allocator.Allocate(Pod(0));
            allocator.Allocate(Pod(1));
        }

        using var reopened = Open("10.0.0.0/24", "fd00::/64");
        Assert.Equal(4, reopened.ListAllocations().Count);
        Assert.Equal(first, reopened.Allocate(Pod(0)));
        Assert.Equal(["10.0.0.4", "fd00::4"], reopened.Allocate(Pod(2)).Select(a => IpMath.Format(a.Address)));
    }

    [Fact]
    public void Unusable_data_dir_is_an_io_error()
    {
        var file = Path.Combine(_dir.Path, "not-a-dir");
        File.WriteAllText(file, "");
        var config = Configs.Parse($$"""{"dataDir":"{{file}}","subnet":"10.0.0.0/24"}""");
        Assert.Equal(IpamErrorKind.Io, Assert.Throws<IpamException>(() => IpAllocator.Open(config)).Kind);
    }
}
