using System.Security.Cryptography;
using System.Text;

namespace Loom.Datapath.Services;

/// <summary>
/// Chain, set and map names exactly as kube-proxy derives them, so <c>iptables-save</c> / <c>nft list</c> on a Loom
/// node reads like on any Kubernetes node (pkg/proxy/iptables and pkg/proxy/nftables, proxier.go).
/// </summary>
public static class KubeProxyNames
{
    // RFC 4648 standard alphabet, as Go's base32.StdEncoding.
    private const string Base32Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

    /// <summary>iptables: <c>KUBE-SVC-</c> + the first 16 base32 chars of sha256(portName + protocol).</summary>
    public static string IptablesServiceChain(ServicePortName name, string protocol) =>
        "KUBE-SVC-" + HashPrefix(name.ToString() + protocol, 16);

    /// <summary>iptables: <c>KUBE-SVL-</c> (the Local policy's endpoints), hashed as <see cref="IptablesServiceChain"/>.</summary>
    public static string IptablesLocalChain(ServicePortName name, string protocol) =>
        "KUBE-SVL-" + HashPrefix(name.ToString() + protocol, 16);

    /// <summary>iptables: <c>KUBE-EXT-</c> (node-port and external-IP traffic), hashed as <see cref="IptablesServiceChain"/>.</summary>
    public static string IptablesExternalChain(ServicePortName name, string protocol) =>
        "KUBE-EXT-" + HashPrefix(name.ToString() + protocol, 16);

    /// <summary>iptables: <c>KUBE-SEP-</c> + the first 16 base32 chars of sha256(portName + protocol + "IP:port").</summary>
    public static string IptablesEndpointChain(ServicePortName name, string protocol, BackendAddress backend) =>
        "KUBE-SEP-" + HashPrefix(name.ToString() + protocol + backend, 16);

    /// <summary>nftables: <c>service-HASH8-ns/name/proto/port</c>, the hash taken over the readable part.</summary>
    public static string NftServiceChain(ServicePortName name, string protocol) => "service-" + NftServiceBase(name, protocol);

    /// <summary>nftables: <c>local-HASH8-ns/name/proto/port</c>, the Local policy's chain (its endpoints on this node).</summary>
    public static string NftLocalChain(ServicePortName name, string protocol) => "local-" + NftServiceBase(name, protocol);

    /// <summary>nftables: <c>external-HASH8-ns/name/proto/port</c>, node-port and external-IP traffic's chain.</summary>
    public static string NftExternalChain(ServicePortName name, string protocol) => "external-" + NftServiceBase(name, protocol);

    /// <summary>nftables: <c>endpoint-HASH8-ns/name/proto/port__IP/port</c>.</summary>
    public static string NftEndpointChain(ServicePortName name, string protocol, BackendAddress backend) => "endpoint-" + NftEndpointBase(name, protocol, backend);

    /// <summary>nftables: the per-endpoint ClientIP affinity set, <c>affinity-</c> + the endpoint chain's base.</summary>
    public static string NftAffinitySet(ServicePortName name, string protocol, BackendAddress backend) => "affinity-" + NftEndpointBase(name, protocol, backend);

    private static string NftServiceBase(ServicePortName name, string protocol) =>
        HashAndTruncate($"{name.Namespace}/{name.Name}/{protocol}/{name.Port}");

    private static string NftEndpointBase(ServicePortName name, string protocol, BackendAddress backend) =>
        HashAndTruncate($"{name.Namespace}/{name.Name}/{protocol}/{name.Port}__{backend.Address.ToString().Replace(':', '.')}/{backend.Port}");

    // nft names are at most 256 bytes; kube-proxy keeps 16 for the prefix and truncates the rest with "...". The hash
    // is over the name as stored; the readable part keeps only characters nft takes unquoted (API-valid names already
    // do), so a name the store should never have held still cannot break out of the script.
    private static string HashAndTruncate(string name)
    {
        const int baseMax = 256 - 16;
        var full = HashPrefix(name, 8) + "-" + RuleText.NftName(name);
        return full.Length > baseMax ? full[..(baseMax - 3)] + "..." : full;
    }

    internal static string HashPrefix(string input, int chars)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(input));
        return Base32(hash)[..chars];
    }

    internal static string Base32(ReadOnlySpan<byte> data)
    {
        var sb = new StringBuilder((data.Length + 4) / 5 * 8);
        int buffer = 0, bits = 0;
        foreach (var b in data)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                sb.Append(Base32Alphabet[(buffer >> (bits - 5)) & 31]);
                bits -= 5;
            }
        }

        if (bits > 0)
        {
            sb.Append(Base32Alphabet[(buffer << (5 - bits)) & 31]);
        }

        while (sb.Length % 8 != 0)
        {
            sb.Append('=');
        }

        return sb.ToString();
    }
}
