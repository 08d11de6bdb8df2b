namespace Loom.Core.Policy;

/// <summary>A port range as the fewest aligned prefixes that cover it exactly, for the policy map's longest-prefix match.</summary>
public static class PortPrefixes
{
    /// <summary>
    /// [<paramref name="first"/>, <paramref name="last"/>] as (port, prefix bits) pairs, lowest first: [80, 80] is (80, 16),
    /// [1, 65535] the sixteen prefixes 1/16, 2/15, 4/14 ... 32768/1, [0, 65535] the one 0/0.
    /// </summary>
    public static IReadOnlyList<(ushort Port, byte Bits)> Cover(int first, int last)
    {
        if (first is < 0 or > ushort.MaxValue || last is < 0 or > ushort.MaxValue || last < first)
        {
            throw new ArgumentOutOfRangeException(nameof(last), $"not a port range: {first}-{last}");
        }

        var prefixes = new List<(ushort, byte)>();
        var start = first;
        while (start <= last)
        {
            // The largest block aligned at start that does not pass last.
            var bits = 16;
            while (bits > 0 && start % (1 << (17 - bits)) == 0 && start + (1 << (17 - bits)) - 1 <= last)
            {
                bits--;
            }

            prefixes.Add(((ushort)start, (byte)bits));
            start += 1 << (16 - bits);
        }

        return prefixes;
    }

    /// <summary>True if <paramref name="port"/> is in the prefix (<paramref name="prefix"/>, <paramref name="bits"/>); 0 bits: every port.</summary>
    public static bool Contains(ushort prefix, byte bits, ushort port) =>
        bits == 0 || (port >> (16 - Math.Min((int)bits, 16))) == (prefix >> (16 - Math.Min((int)bits, 16)));
}
