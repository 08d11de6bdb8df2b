using System.Net;
using Loom.Core.Ipam;

namespace Loom.Core.Tests.Ipam;

/// <summary>Corrupt address files, and addresses a DEL left pending release because the agent could not be told.</summary>
public sealed class AllocationFileTests : IDisposable
{
    private static readonly Attachment Pod1 = new("container-1", "eth0");
    private static readonly Attachment Pod2 = new("container-2", "eth0");
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string NetDir => Path.Combine(_dir.Path, "testnet");

    private IIpAllocator Open() => IpAllocator.Open(Configs.Simple(_dir.Path, "10.0.0.0/29"));

    [Theory]
    [InlineData("", true)]
    [InlineData("\0\0\0\0\0\0", true)]
    [InlineData("   \r\n", true)]
    [InlineData("container-1\r\neth\0", true)]
    [InlineData("container-1", false)] // host-local before ifname was recorded
    [InlineData("container-1\r\neth0", false)]
    public void A_file_naming_no_valid_owner_is_corrupt(string content, bool corrupt)
    {
        var record = DiskStore.Parse(IPAddress.Parse("10.0.0.2"), content);
        Assert.Equal(corrupt, record.IsCorrupt);
        Assert.Equal(corrupt ? "" : "container-1", record.ContainerId);
    }

    [Fact]
    public void A_corrupt_file_keeps_its_address_taken_until_gc_or_rebuild()
    {
        Directory.CreateDirectory(NetDir);
        File.WriteAllText(Path.Combine(NetDir, "10.0.0.2"), "\0\0\0\0");
        using (var allocator = Open())
        {
            Assert.Equal("10.0.0.3", IpMath.Format(Assert.Single(allocator.Allocate(Pod1)).Address));
        }

        using (var dir = AllocationDirectory.Open(NetDir))
        {
            Assert.Contains(dir.Read().Records, r => r.IsCorrupt && r.Address.Equals(IPAddress.Parse("10.0.0.2")));
            Assert.False(dir.Rebuild(IPAddress.Parse("10.0.0.3"), Pod2)); // not corrupt: never overwritten
            Assert.True(dir.Rebuild(IPAddress.Parse("10.0.0.2"), Pod2));
        }

        Assert.Equal("container-2\r\neth0", File.ReadAllText(Path.Combine(NetDir, "10.0.0.2")));
        using (var allocator = Open())
        {
            Assert.Equal("10.0.0.2", IpMath.Format(Assert.Single(allocator.Find(Pod2)).Address));
        }
    }

    [Fact]
    public void A_corrupt_file_is_collected_by_gc()
    {
        Directory.CreateDirectory(NetDir);
        File.WriteAllText(Path.Combine(NetDir, "10.0.0.2"), "");
        using var allocator = Open();
        var freed = allocator.GarbageCollect([Pod1]);
        Assert.Equal(IPAddress.Parse("10.0.0.2"), Assert.Single(freed).Address);
    }

    [Fact]
    public void An_address_pending_release_is_handed_to_nobody_and_survives_gc()
    {
        using var allocator = Open();
        var held = Assert.Single(allocator.Allocate(Pod1)).Address;
        Assert.Equal(held, Assert.Single(allocator.HoldForRelease(Pod1)).Address);

        Assert.Empty(allocator.GarbageCollect([]));
        for (var i = 0; i < 4; i++)
        {
            Assert.NotEqual(held, Assert.Single(allocator.Allocate(new Attachment($"other-{i}", "eth0"))).Address);
        }

        Assert.Throws<IpamException>(() => allocator.Allocate(Pod2)); // 5 usable addresses, one held
        Assert.True(File.Exists(Path.Combine(NetDir, "pending_release." + held)));

        // The runtime retries DEL once the agent answers: the address and its mark go.
        Assert.Single(allocator.Release(Pod1));
        Assert.False(File.Exists(Path.Combine(NetDir, "pending_release." + held)));
        Assert.Equal(held, Assert.Single(allocator.Allocate(Pod2)).Address);
    }

    [Fact]
    public void The_agent_releases_a_pending_address_only_for_its_owner()
    {
        using (var allocator = Open())
        {
            allocator.Allocate(Pod1);
            allocator.Allocate(Pod2);
            allocator.HoldForRelease(Pod1);
        }

        using var dir = AllocationDirectory.Open(NetDir);
        var (records, pending) = dir.Read();
        var address = Assert.Single(pending);
        Assert.Equal(Pod1, records.Single(r => r.Address.Equals(address)).Attachment);

        Assert.False(dir.ReleasePending(address, Pod2));
        Assert.False(dir.ReleasePending(records.Single(r => r.Attachment == Pod2).Address, Pod2)); // not pending
        Assert.True(dir.ReleasePending(address, Pod1));
        Assert.Equal([Pod2], dir.Read().Records.Select(r => r.Attachment));
        Assert.Empty(dir.Read().Pending);
    }

    [Fact]
    public void A_stale_mark_of_an_old_owner_does_not_hold_the_new_owners_address()
    {
        IPAddress address;
        using (var allocator = Open())
        {
            address = Assert.Single(allocator.Allocate(Pod2)).Address;
        }

        // A DEL of Pod1 killed after deleting the address file but before its mark; the address then went to Pod2.
        File.WriteAllText(Path.Combine(NetDir, "pending_release." + address), "container-1\r\neth0");
        using var dir = AllocationDirectory.Open(NetDir);
        Assert.Empty(dir.Read().Pending);
        Assert.False(dir.ReleasePending(address, Pod1));
        Assert.False(dir.ReleasePending(address, Pod2));
        Assert.Equal([Pod2], dir.Read().Records.Select(r => r.Attachment));
    }

    [Fact]
    public void A_retried_add_of_the_same_attachment_takes_its_address_back_from_pending()
    {
        using var allocator = Open();
        var first = Assert.Single(allocator.Allocate(Pod1)).Address;
        allocator.HoldForRelease(Pod1);
        Assert.Equal(first, Assert.Single(allocator.Allocate(Pod1)).Address);

        using var dir = AllocationDirectory.Open(NetDir);
        Assert.Empty(dir.Read().Pending);
    }
}
