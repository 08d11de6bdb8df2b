using System.Net;

namespace Loom.Core.Ipam;

/// <summary>An address handed to an attachment, with what the CNI result needs around it.</summary>
/// <param name="RangeSetIndex">Index of the range set in <see cref="IpamConfig.RangeSets"/>.</param>
/// <param name="Address">The address itself.</param>
/// <param name="Subnet">Subnet of the range it came from (gives the prefix length).</param>
/// <param name="Gateway">Gateway of that range.</param>
public sealed record IpAllocation(int RangeSetIndex, IPAddress Address, IPNetwork Subnet, IPAddress Gateway)
{
    /// <summary>CNI's "address" field, e.g. 10.1.0.5/24.</summary>
    public string Cidr => $"{IpMath.Format(Address)}/{Subnet.PrefixLength}";
}
