using Loom.Core.Model;

namespace Loom.Core.Policy;

/// <summary>What one policy port admits, as (IANA protocol, port prefix) entries of the policy map.</summary>
public static class PolicyPorts
{
    public const byte Tcp = 6;
    public const byte Udp = 17;

    /// <summary>The entry of a rule without ports: every protocol, every port.</summary>
    public static readonly (byte Protocol, ushort Port, byte Bits) Any = (0, 0, 0);

    public static byte Number(Protocol protocol) => protocol switch
    {
        Protocol.Tcp => Tcp,
        Protocol.Udp => Udp,
        _ => throw new ArgumentOutOfRangeException(nameof(protocol), protocol, "Loom's datapath carries TCP and UDP"),
    };

    /// <summary>
    /// A rule's ports as entries: no port at all is <see cref="Any"/>; a port without number its protocol's every port; a
    /// number one port; a range its prefixes; a name the numbers <paramref name="named"/> resolves it to (none: nothing).
    /// </summary>
    public static IEnumerable<(byte Protocol, ushort Port, byte Bits)> Entries(IReadOnlyList<NetworkPolicyPort> ports,
        Func<string, Protocol, IEnumerable<int>> named)
    {
        ArgumentNullException.ThrowIfNull(ports);
        ArgumentNullException.ThrowIfNull(named);
        if (ports.Count == 0)
        {
            yield return Any;
            yield break;
        }

        foreach (var p in ports)
        {
            var protocol = Number(p.Protocol);
            if (p.Port is null)
            {
                yield return (protocol, 0, 0);
            }
            else if (PolicyPortText.TryNumber(p.Port, out var first))
            {
                foreach (var (port, bits) in PortPrefixes.Cover((int)first, p.EndPort ?? (int)first))
                {
                    yield return (protocol, port, bits);
                }
            }
            else
            {
                foreach (var number in named(p.Port, p.Protocol).Where(n => n is > 0 and <= ushort.MaxValue).Distinct())
                {
                    yield return (protocol, (ushort)number, 16);
                }
            }
        }
    }

    /// <summary>True if any port of the rule is named (egress resolves those per peer).</summary>
    public static bool HasNamed(IReadOnlyList<NetworkPolicyPort> ports) =>
        ports.Any(p => p.Port is not null && !PolicyPortText.TryNumber(p.Port, out _));

    /// <summary>The numbers a name has on some pods (name and protocol both match).</summary>
    public static IEnumerable<int> Resolve(IEnumerable<ContainerPort> ports, string name, Protocol protocol) =>
        ports.Where(c => c.Name == name && c.Protocol == protocol).Select(c => c.Port);
}
