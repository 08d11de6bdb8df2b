using System.Net;
using Loom.Core.Ipam;

namespace Loom.Core.Pool;

/// <summary>Address arithmetic for carving a pool into equal subnets; IPv4 and IPv6 alike, via 128-bit integers.</summary>
internal static class Subnets
{
    /// <summary>How many /<paramref name="maskSize"/> subnets the pool holds (saturating at UInt128.MaxValue).</summary>
    public static UInt128 Count(IPNetwork pool, int maskSize)
    {
        var shift = maskSize - pool.PrefixLength;
        return shift >= 128 ? UInt128.MaxValue : UInt128.One << shift;
    }

    /// <summary>The <paramref name="index"/>-th /<paramref name="maskSize"/> subnet of the pool.</summary>
    public static IPNetwork Nth(IPNetwork pool, int maskSize, UInt128 index)
    {
        var family = pool.BaseAddress.AddressFamily;
        var value = IpMath.ToValue(pool.BaseAddress) + (index << (IpMath.Bits(family) - maskSize));
        return new IPNetwork(IpMath.FromValue(value, family), maskSize);
    }

    public static bool Overlap(IPNetwork a, IPNetwork b)
        => a.BaseAddress.AddressFamily == b.BaseAddress.AddressFamily && (a.Contains(b.BaseAddress) || b.Contains(a.BaseAddress));
}
