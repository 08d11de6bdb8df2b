namespace Loom.Core.Ipam;

/// <summary>
/// host-local's round robin: start just after the last reserved address (or at the first
/// range's start), walk every range of the set once, wrap around, skip reserved addresses.
/// A crash-looping container therefore does not get its old address straight back.
/// </summary>
internal static class AllocationOrder
{
    public static IEnumerable<(IpRange Range, UInt128 Value)> Candidates(RangeSet set, System.Net.IPAddress? lastReserved)
    {
        var ranges = set.Ranges;
        var index = 0;
        var current = ranges[0].Start;

        // A cursor outside the set (config changed) just loses round robin once, as in host-local.
        var holder = lastReserved is null ? null : set.RangeFor(lastReserved);
        if (holder is not null)
        {
            index = IndexOf(ranges, holder);
            (index, current) = Next(ranges, index, IpMath.ToValue(lastReserved!));
        }

        UInt128 total = 0;
        foreach (var range in ranges)
        {
            total += range.End - range.Start + 1;
        }

        for (UInt128 step = 0; step < total; step++)
        {
            var range = ranges[index];
            if (!range.IsReserved(current))
            {
                yield return (range, current);
            }

            (index, current) = Next(ranges, index, current);
        }
    }

    private static (int Index, UInt128 Value) Next(IReadOnlyList<IpRange> ranges, int index, UInt128 value)
    {
        if (value < ranges[index].End)
        {
            return (index, value + 1);
        }

        index = (index + 1) % ranges.Count;
        return (index, ranges[index].Start);
    }

    private static int IndexOf(IReadOnlyList<IpRange> ranges, IpRange range)
    {
        for (var i = 0; i < ranges.Count; i++)
        {
            if (ReferenceEquals(ranges[i], range))
            {
                return i;
            }
        }

        return 0;
    }
}
