using System.Net;
using Loom.Core.Ipam;

namespace Loom.Core.Policy;

/// <summary>
/// Splits one direction's ipBlocks into longest-prefix regions: for every prefix listed (cidrs and excepts), the
/// addresses in it but in no longer listed prefix, with the union of what the blocks that contain the region (and do
/// not except it) allow. An address's longest listed prefix then says everything about it, as the LPM map needs.
/// </summary>
public static class CidrRegions
{
    public static IReadOnlyList<(IPNetwork Prefix, IReadOnlyList<T> Allowed)> Split<T>(IEnumerable<(IPNetwork Cidr, IReadOnlyList<IPNetwork> Except, IReadOnlyList<T> Allowed)> blocks)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        var list = blocks.ToList();
        var prefixes = list.SelectMany(b => b.Except.Prepend(b.Cidr)).Distinct().OrderBy(p => p, Comparer<IPNetwork>.Create(Compare)).ToList();
        var regions = new List<(IPNetwork, IReadOnlyList<T>)>();
        foreach (var prefix in prefixes)
        {
            // The region lies in a block's cidr (or except) exactly when its own prefix does: both are listed, so nested.
            var allowed = list.Where(b => PolicyCidrText.Within(prefix, b.Cidr) && !b.Except.Any(e => PolicyCidrText.Within(prefix, e)))
                .SelectMany(b => b.Allowed).Distinct().ToList();
            regions.Add((prefix, allowed));
        }

        return regions;
    }

    /// <summary>IPv4 before IPv6, then by address, then shorter first.</summary>
    public static int Compare(IPNetwork a, IPNetwork b)
    {
        var family = a.BaseAddress.AddressFamily.CompareTo(b.BaseAddress.AddressFamily);
        if (family != 0)
        {
            return family;
        }

        var address = IpMath.ToValue(a.BaseAddress).CompareTo(IpMath.ToValue(b.BaseAddress));
        return address != 0 ? address : a.PrefixLength.CompareTo(b.PrefixLength);
    }
}
