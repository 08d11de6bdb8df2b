using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Loom.Core.Policy;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Policy;

/// <summary>
/// The compiled policy records as pol_rules / pol_cidr / pol_ipcache keys and back. Keys are normalized (no bits past
/// the prefix), so the keys read back from a trie compare equal to the ones computed from the records.
/// </summary>
internal static class PolicyKeys
{
    /// <summary>ep_id travels in the upper 16 bits of skb->mark (the deferred service verdict).</summary>
    public const uint MaxEndpointId = 0xFFFF;

    public static void CheckEndpointId(uint epId)
    {
        if (epId is 0 or > MaxEndpointId)
        {
            throw new ArgumentOutOfRangeException(nameof(epId), epId, $"an endpoint id must be 1..{MaxEndpointId}");
        }
    }

    public static PolRuleKey Rule(uint epId, PolicyRule rule)
    {
        CheckDirection(rule.Direction);
        if (rule.PortPrefixBits > 16)
        {
            throw new ArgumentException(Invariant($"rule {rule}: a port prefix has at most 16 bits"), nameof(rule));
        }

        if (rule.Protocol == 0 && (rule.Port != 0 || rule.PortPrefixBits != 0))
        {
            throw new ArgumentException(Invariant($"rule {rule}: a port needs a protocol"), nameof(rule));
        }

        var mask = rule.PortPrefixBits == 0 ? 0 : (ushort)(0xFFFF << (16 - rule.PortPrefixBits));
        if ((rule.Port & ~mask) != 0)
        {
            throw new ArgumentException(Invariant($"rule {rule}: port {rule.Port} has bits past its /{rule.PortPrefixBits} prefix"), nameof(rule));
        }

        var bits = rule.Protocol == 0 ? PolicyMaps.RuleFixedBits : PolicyMaps.RuleFixedBits + 8u + rule.PortPrefixBits;
        return new PolRuleKey
        {
            PrefixLength = bits,
            EndpointId = epId,
            Identity = rule.Identity,
            Direction = (byte)rule.Direction,
            Protocol = rule.Protocol,
            Port = BinaryPrimitives.ReverseEndianness(rule.Port),
        };
    }

    public static PolicyRule Rule(PolRuleKey key)
    {
        var portBits = key.PrefixLength > PolicyMaps.RuleFixedBits + 8 ? (byte)(key.PrefixLength - PolicyMaps.RuleFixedBits - 8) : (byte)0;
        return new PolicyRule((PolicyDirection)key.Direction, key.Identity, key.Protocol, BinaryPrimitives.ReverseEndianness(key.Port), portBits);
    }

    public static PolCidrKey Cidr(uint epId, PolicyCidr cidr)
    {
        CheckDirection(cidr.Direction);
        if (cidr.Identity < ReservedIdentity.CidrBase)
        {
            throw new ArgumentException(Invariant($"ipBlock {cidr.Prefix}: identity {cidr.Identity} is below the CIDR range ({ReservedIdentity.CidrBase})"), nameof(cidr));
        }

        var (bits, address) = Ip(cidr.Prefix);
        return new PolCidrKey { PrefixLength = PolicyMaps.CidrFixedBits + bits, EndpointId = epId, Direction = (byte)cidr.Direction, Address = address };
    }

    public static PolicyCidr Cidr(PolCidrKey key, uint identity) =>
        new((PolicyDirection)key.Direction, new IPNetwork(LbMaps.FromNetwork(key.Address), (int)(key.PrefixLength - PolicyMaps.CidrFixedBits)), identity);

    public static PolIpKey Ipcache(IPNetwork prefix)
    {
        var (bits, address) = Ip(prefix);
        return new PolIpKey(bits, address);
    }

    /// <summary>An IPv4 prefix as (length, network-order address with the host bits cleared).</summary>
    private static (uint Bits, uint Address) Ip(IPNetwork prefix)
    {
        if (prefix.BaseAddress.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new ArgumentException($"{prefix} is not IPv4: the policy datapath is IPv4 only", nameof(prefix));
        }

        var host = BinaryPrimitives.ReadUInt32BigEndian(prefix.BaseAddress.GetAddressBytes());
        var mask = prefix.PrefixLength == 0 ? 0u : uint.MaxValue << (32 - prefix.PrefixLength);
        if ((host & ~mask) != 0)
        {
            throw new ArgumentException($"{prefix} has bits past its prefix", nameof(prefix));
        }

        return ((uint)prefix.PrefixLength, LbMaps.ToNetwork(prefix.BaseAddress));
    }

    private static void CheckDirection(PolicyDirection direction)
    {
        if (direction is not (PolicyDirection.Ingress or PolicyDirection.Egress))
        {
            throw new ArgumentOutOfRangeException(nameof(direction), direction, "not a policy direction");
        }
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
