using System.Net;
using CsCheck;
using Loom.Core.Services;

namespace Loom.Datapath.Tests;

public sealed class ClusterIpAllocatorTests
{
    private static readonly ClusterIpAllocator Default = new(ClusterIpAllocator.DefaultServiceCidr);

    private static HashSet<IPAddress> Set(params string[] ips) => ips.Select(IPAddress.Parse).ToHashSet();

    [Fact]
    public void Reserved_addresses_are_the_kubernetes_ones()
    {
        Assert.Equal(IPAddress.Parse("10.96.0.1"), Default.ApiServerIp);
        Assert.Equal(IPAddress.Parse("10.96.0.10"), Default.DnsIp);
        Assert.True(Default.IsReserved(IPAddress.Parse("10.96.0.10")));
    }

    [Fact]
    public void First_automatic_address_skips_network_and_api_server()
    {
        Assert.Equal(IPAddress.Parse("10.96.0.2"), Default.Allocate(Set()));
    }

    [Fact]
    public void Dns_address_is_skipped_unless_requested()
    {
        var used = Set("10.96.0.2", "10.96.0.3", "10.96.0.4", "10.96.0.5", "10.96.0.6", "10.96.0.7", "10.96.0.8", "10.96.0.9");
        Assert.Equal(IPAddress.Parse("10.96.0.11"), Default.Allocate(used));
        Assert.Equal(IPAddress.Parse("10.96.0.10"), Default.Allocate(used, IPAddress.Parse("10.96.0.10")));
        Assert.Equal(IPAddress.Parse("10.96.0.1"), Default.Allocate(used, IPAddress.Parse("10.96.0.1")));
    }

    [Fact]
    public void A_requested_address_is_returned_when_free()
    {
        Assert.Equal(IPAddress.Parse("10.100.7.9"), Default.Allocate(Set("10.96.0.2"), IPAddress.Parse("10.100.7.9")));
    }

    [Fact]
    public void A_duplicate_request_is_refused_with_the_address_in_the_message()
    {
        var ex = Assert.Throws<ClusterIpAllocationException>(() => Default.Allocate(Set("10.96.0.10"), IPAddress.Parse("10.96.0.10")));
        Assert.Equal(ClusterIpAllocationError.InUse, ex.Error);
        Assert.Contains("10.96.0.10 is already allocated", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("10.95.255.255")]
    [InlineData("10.112.0.0")]
    [InlineData("10.96.0.0")]
    [InlineData("10.111.255.255")]
    [InlineData("fd00::1")]
    public void Out_of_range_network_and_broadcast_requests_are_refused(string ip)
    {
        var ex = Assert.Throws<ClusterIpAllocationException>(() => Default.Allocate(Set(), IPAddress.Parse(ip)));
        Assert.Equal(ClusterIpAllocationError.OutOfRange, ex.Error);
    }

    [Fact]
    public void A_full_range_is_reported()
    {
        var small = new ClusterIpAllocator(IPNetwork.Parse("10.0.0.0/28"));
        var used = new HashSet<IPAddress>();
        for (var i = 0; i < 12; i++)
        {
            used.Add(small.Allocate(used)); // .2-.9, .11-.14
        }

        Assert.DoesNotContain(IPAddress.Parse("10.0.0.10"), used);
        Assert.DoesNotContain(IPAddress.Parse("10.0.0.15"), used);
        Assert.Equal(ClusterIpAllocationError.Exhausted, Assert.Throws<ClusterIpAllocationException>(() => small.Allocate(used)).Error);
    }

    [Fact]
    public void Property_allocations_never_repeat_and_stay_in_range()
    {
        // A random interleaving of automatic and explicit requests on a small range: every success is new and in range,
        // every failure is a duplicate, out-of-range or exhaustion error; reserved addresses only come on request.
        var cidr = IPNetwork.Parse("10.96.0.0/26");
        var alloc = new ClusterIpAllocator(cidr);
        Gen.Int[-1, 70].Array[1, 120].Sample(ops =>
        {
            var used = new HashSet<IPAddress>();
            foreach (var op in ops)
            {
                IPAddress? req = op < 0 ? null : new IPAddress([10, 96, 0, (byte)op]);
                try
                {
                    var ip = alloc.Allocate(used, req);
                    Assert.True(used.Add(ip), $"duplicate {ip}");
                    Assert.True(cidr.Contains(ip));
                    Assert.True(req is not null || !alloc.IsReserved(ip));
                }
                catch (ClusterIpAllocationException ex)
                {
                    Assert.True(req is not null || ex.Error == ClusterIpAllocationError.Exhausted);
                }
            }
        });
    }
}
