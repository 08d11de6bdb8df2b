using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Loom.Core.Ipam;

/// <summary>
/// Addresses as unsigned integers so v4 and v6 share one arithmetic, plus the strict
/// parsing and canonical formatting that keep file names identical to host-local's.
/// </summary>
internal static class IpMath
{
    public static int Bits(AddressFamily family) => family == AddressFamily.InterNetwork ? 32 : 128;

    public static UInt128 ToValue(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out var written);
        UInt128 value = 0;
        for (var i = 0; i < written; i++)
        {
            value = (value << 8) | bytes[i];
        }

        return value;
    }

    public static IPAddress FromValue(UInt128 value, AddressFamily family)
    {
        Span<byte> bytes = stackalloc byte[family == AddressFamily.InterNetwork ? 4 : 16];
        for (var i = bytes.Length - 1; i >= 0; i--)
        {
            bytes[i] = (byte)(value & 0xff);
            value >>= 8;
        }

        return new IPAddress(bytes);
    }

    /// <summary>The host part of a prefix: all ones below the prefix length.</summary>
    public static UInt128 HostMask(int prefixLength, AddressFamily family)
    {
        var hostBits = Bits(family) - prefixLength;
        return hostBits >= 128 ? UInt128.MaxValue : (UInt128.One << hostBits) - 1;
    }

    /// <summary>
    /// Parses like Go's net.ParseIP: dotted quads only (no "10.1" or octal shorthands .NET
    /// accepts), no zone ids, and v4-mapped v6 folded to v4 as host-local canonicalizes it.
    /// </summary>
    public static bool TryParse(string text, [NotNullWhen(true)] out IPAddress? address)
    {
        address = null;
        if (text.Contains(':', StringComparison.Ordinal))
        {
            if (text.Contains('%', StringComparison.Ordinal) || !IPAddress.TryParse(text, out var v6)
                || v6.AddressFamily != AddressFamily.InterNetworkV6)
            {
                return false;
            }

            address = v6.IsIPv4MappedToIPv6 ? v6.MapToIPv4() : v6;
            return true;
        }

        var parts = text.Split('.');
        if (parts.Length != 4)
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[4];
        for (var i = 0; i < 4; i++)
        {
            var part = parts[i];
            if (part.Length is 0 or > 3 || (part.Length > 1 && part[0] == '0')
                || !part.All(char.IsAsciiDigit)
                || !int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var octet) || octet > 255)
            {
                return false;
            }

            bytes[i] = (byte)octet;
        }

        address = new IPAddress(bytes);
        return true;
    }

    /// <summary>
    /// RFC 5952 text, as Go prints it. .NET writes some v6 addresses with an embedded
    /// dotted quad (e.g. ::1.2.3.4), which would name a second file for the same IP.
    /// </summary>
    public static string Format(IPAddress address)
    {
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            return address.ToString();
        }

        var value = ToValue(address);
        Span<ushort> groups = stackalloc ushort[8];
        for (var i = 7; i >= 0; i--)
        {
            groups[i] = (ushort)(value & 0xffff);
            value >>= 16;
        }

        // Longest run of zero groups, at least two long, first one wins a tie.
        int bestStart = -1, bestLength = 0;
        for (var i = 0; i < 8;)
        {
            if (groups[i] != 0)
            {
                i++;
                continue;
            }

            var start = i;
            while (i < 8 && groups[i] == 0)
            {
                i++;
            }

            if (i - start > bestLength)
            {
                bestStart = start;
                bestLength = i - start;
            }
        }

        if (bestLength < 2)
        {
            bestStart = -1;
            bestLength = 0;
        }

        var text = new StringBuilder(39);
        for (var i = 0; i < 8; i++)
        {
            if (i == bestStart)
            {
                text.Append("::");
                i += bestLength - 1;
                continue;
            }

            if (i > 0 && i != bestStart + bestLength)
            {
                text.Append(':');
            }

            text.Append(groups[i].ToString("x", CultureInfo.InvariantCulture));
        }

        return text.ToString();
    }
}
