using System.Net;
using Loom.Core.Cni;
using Loom.Core.Ipam;

namespace Loom.Core.Policy;

/// <summary>
/// An ipBlock's CIDR text as the API server reads it (ParseCIDRSloppy): IPv4 or IPv6, host bits allowed and masked off,
/// so "10.0.0.1/24" is the network 10.0.0.0/24.
/// </summary>
public static class PolicyCidrText
{
    public static bool TryParse(string? text, out IPNetwork network)
    {
        network = default;
        if (!CniCidr.TryParse(text, out var cidr))
        {
            return false;
        }

        var family = cidr.Address.AddressFamily;
        var masked = IpMath.ToValue(cidr.Address) & ~IpMath.HostMask(cidr.PrefixLength, family);
        network = new IPNetwork(IpMath.FromValue(masked, family), cidr.PrefixLength);
        return true;
    }

    /// <summary>True if <paramref name="inner"/> lies inside <paramref name="outer"/> (same family, at least as long).</summary>
    public static bool Within(IPNetwork inner, IPNetwork outer) =>
        inner.BaseAddress.AddressFamily == outer.BaseAddress.AddressFamily
        && inner.PrefixLength >= outer.PrefixLength
        && outer.Contains(inner.BaseAddress);
}
