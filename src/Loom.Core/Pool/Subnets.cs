using System.Buffers.Binary;
using System.Net;

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
        var bytes = pool.BaseAddress.GetAddressBytes();
        var bits = bytes.Length * 8;
        var value = ToInteger(bytes) + (index << (bits - maskSize));
        return new IPNetwork(FromInteger(value, bytes.Length), maskSize);
    }

    public static bool Overlap(IPNetwork a, IPNetwork b)
        => a.BaseAddress.AddressFamily == b.BaseAddress.AddressFamily && (a.Contains(b.BaseAddress) || b.Contains(a.BaseAddress));

    private static UInt128 ToInteger(byte[] bytes)
    {
        Span<byte> wide = stackalloc byte[16];
        bytes.CopyTo(wide[(16 - bytes.Length)..]);
        return BinaryPrimitives.ReadUInt128BigEndian(wide);
    }

    private static IPAddress FromInteger(UInt128 value, int length)
    {
        Span<byte> wide = stackalloc byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(wide, value);
        return new IPAddress(wide[(16 - length)..]);
    }
}
