using System.Net;
using System.Net.Sockets;

namespace Loom.Core.Ipam;

/// <summary>
/// Ranges of one address family that together yield one address per attachment
/// (host-local's inner list of <c>ranges</c>). Ranges never overlap.
/// </summary>
public sealed class RangeSet
{
    private RangeSet(IReadOnlyList<IpRange> ranges)
    {
        Ranges = ranges;
    }

    public IReadOnlyList<IpRange> Ranges { get; }

    public AddressFamily AddressFamily => Ranges[0].AddressFamily;

    /// <exception cref="IpamConfigException">Empty, mixed families or overlapping ranges.</exception>
    public static RangeSet Create(IEnumerable<IpRange> ranges) => Create([.. ranges], key: "ranges[0]");

    internal static RangeSet Create(IReadOnlyList<IpRange> ranges, string key)
    {
        if (ranges.Count == 0)
        {
            throw new IpamConfigException(key, $"{key} is an empty range set");
        }

        for (var i = 1; i < ranges.Count; i++)
        {
            if (ranges[i].AddressFamily != ranges[0].AddressFamily)
            {
                throw new IpamConfigException($"{key}[{i}].subnet", $"{key}[{i}].subnet {ranges[i].Subnet} mixes address families with {ranges[0].Subnet} in the same range set");
            }
        }

        for (var i = 0; i < ranges.Count; i++)
        {
            for (var j = i + 1; j < ranges.Count; j++)
            {
                if (ranges[i].Overlaps(ranges[j]))
                {
                    throw new IpamConfigException($"{key}[{j}]", $"{key}[{j}] {ranges[j]} overlaps {key}[{i}] {ranges[i]}");
                }
            }
        }

        return new RangeSet(ranges);
    }

    /// <summary>The range whose pool holds the address, or null.</summary>
    public IpRange? RangeFor(IPAddress address) => Ranges.FirstOrDefault(r => r.Contains(address));

    public bool Contains(IPAddress address) => RangeFor(address) is not null;

    internal bool Overlaps(RangeSet other) => Ranges.Any(r => other.Ranges.Any(r.Overlaps));

    internal UInt128 Capacity
    {
        get
        {
            UInt128 total = 0;
            foreach (var range in Ranges)
            {
                total += range.Capacity;
            }

            return total;
        }
    }

    public override string ToString() => string.Join(",", Ranges);
}
