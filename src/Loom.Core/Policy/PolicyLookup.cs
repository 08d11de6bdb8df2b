using System.Net;

namespace Loom.Core.Policy;

/// <summary>
/// The datapath's verdict on a new connection, simulated on a compiled <see cref="EndpointPolicy"/> as bpf/policy.c
/// looks it up: an open direction passes; otherwise an entry must admit the protocol and port for the peer's own
/// identity, for the identity of the ipBlock region the peer's address falls in (longest listed prefix), or for any peer (0).
/// </summary>
public static class PolicyLookup
{
    public static bool Allows(EndpointPolicy policy, PolicyDirection direction, uint peerIdentity, IPAddress peerIp, byte protocol, ushort port)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(peerIp);
        if (!(direction == PolicyDirection.Ingress ? policy.IngressEnforced : policy.EgressEnforced))
        {
            return true;
        }

        var region = Region(policy, direction, peerIp);
        return policy.Rules.Any(r => r.Direction == direction
            && (r.Identity == peerIdentity || r.Identity == region || r.Identity == ReservedIdentity.Unknown)
            && (r.Protocol == 0 || r.Protocol == protocol)
            && PortPrefixes.Contains(r.Port, r.PortPrefixBits, port));
    }

    /// <summary>The synthetic identity of the longest prefix holding <paramref name="ip"/>; null when none does.</summary>
    public static uint? Region(EndpointPolicy policy, PolicyDirection direction, IPAddress ip)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(ip);
        var match = policy.Cidrs.Where(c => c.Direction == direction && c.Prefix.BaseAddress.AddressFamily == ip.AddressFamily && c.Prefix.Contains(ip))
            .OrderByDescending(c => c.Prefix.PrefixLength).FirstOrDefault();
        return match == default ? null : match.Identity;
    }
}
