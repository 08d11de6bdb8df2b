using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace Loom.Linux.Firewall;

/// <summary>
/// Per-attachment masquerade, laid out as the reference bridge plugin's <c>ipMasq</c> does it, so an operator's
/// <c>iptables -t nat -S</c> looks the same: POSTROUTING sends the pod's source address to a chain of its own
/// that accepts traffic to the pod's subnet and masquerades the rest (multicast excepted).
/// </summary>
public static class IpMasq
{
    /// <summary>Chain name from the network name and container id: stable, so DEL finds what ADD made.</summary>
    public static string ChainName(string network, string containerId)
    {
        var hash = SHA512.HashData(Encoding.UTF8.GetBytes(network + containerId));
        return "CNI-" + Convert.ToHexStringLower(hash)[..24];
    }

    public static string Comment(string network, string containerId) =>
        $"name: \"{network}\" id: \"{containerId}\"";

    /// <summary>The iptables-restore input that installs masquerade for one pod address.</summary>
    public static string RenderSetup(string network, string containerId, IPAddress podIp, IPNetwork subnet, IEnumerable<string> existingPostrouting)
    {
        var chain = ChainName(network, containerId);
        var comment = Quote(Comment(network, containerId));
        var bits = podIp.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128;
        var multicast = bits == 32 ? "224.0.0.0/4" : "ff00::/8";
        var jump = $"-A POSTROUTING -s {podIp}/{bits.ToString(CultureInfo.InvariantCulture)} -m comment --comment {comment} -j {chain}";
        var sb = new StringBuilder();
        sb.Append("*nat\n");
        sb.Append(':').Append(chain).Append(" - [0:0]\n"); // declaring the chain flushes it: a repeated ADD rewrites it
        sb.Append("-A ").Append(chain).Append(" -d ").Append(subnet).Append(" -m comment --comment ").Append(comment).Append(" -j ACCEPT\n");
        sb.Append("-A ").Append(chain).Append(" ! -d ").Append(multicast).Append(" -m comment --comment ").Append(comment).Append(" -j MASQUERADE\n");
        if (!existingPostrouting.Contains(jump))
        {
            sb.Append(jump).Append('\n');
        }

        sb.Append("COMMIT\n");
        return sb.ToString();
    }

    /// <summary>The iptables-restore input that removes every POSTROUTING jump to the chain and the chain itself.</summary>
    public static string? RenderTeardown(string network, string containerId, string natSave)
    {
        var chain = ChainName(network, containerId);
        var lines = natSave.Split('\n');
        var chainExists = lines.Any(l => l.StartsWith(':' + chain + ' ', StringComparison.Ordinal));
        var jumps = lines.Where(l => l.StartsWith("-A POSTROUTING ", StringComparison.Ordinal)
                                     && l.EndsWith("-j " + chain, StringComparison.Ordinal)).ToList();
        if (!chainExists && jumps.Count == 0)
        {
            return null;
        }

        var sb = new StringBuilder("*nat\n");
        foreach (var j in jumps)
        {
            sb.Append("-D ").Append(j.AsSpan(3)).Append('\n');
        }

        if (chainExists)
        {
            sb.Append(':').Append(chain).Append(" - [0:0]\n").Append("-X ").Append(chain).Append('\n');
        }

        sb.Append("COMMIT\n");
        return sb.ToString();
    }

    /// <summary>Installs masquerade for a pod address in the caller's network namespace. Idempotent.</summary>
    public static void Setup(string network, string containerId, IPAddress podIp, IPNetwork subnet)
    {
        var v6 = podIp.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
        var existing = IptablesRestore.Save("nat", v6).Split('\n');
        IptablesRestore.Apply(RenderSetup(network, containerId, podIp, subnet, existing), v6);
    }

    /// <summary>Removes what <see cref="Setup"/> made; nothing to remove is success (DEL is idempotent).</summary>
    public static void Teardown(string network, string containerId, bool ipv6 = false)
    {
        var rules = RenderTeardown(network, containerId, IptablesRestore.Save("nat", ipv6));
        if (rules is not null)
        {
            IptablesRestore.Apply(rules, ipv6);
        }
    }

    /// <summary>
    /// Container ids that have a POSTROUTING jump of <paramref name="network"/> in <paramref name="natSave"/>, read
    /// back from the rule comment: what GC needs to find chains of attachments it no longer knows about.
    /// </summary>
    public static IReadOnlyList<string> ContainerIds(string network, string natSave)
    {
        ArgumentNullException.ThrowIfNull(natSave);
        var marker = "--comment " + Quote(Comment(network, ""))[..^3]; // up to and including: id: \"
        var ids = new List<string>();
        foreach (var line in natSave.Split('\n'))
        {
            var at = line.StartsWith("-A POSTROUTING ", StringComparison.Ordinal) ? line.IndexOf(marker, StringComparison.Ordinal) : -1;
            if (at < 0)
            {
                continue;
            }

            var rest = line.AsSpan(at + marker.Length);
            var end = rest.IndexOf("\\\"", StringComparison.Ordinal);
            if (end > 0 && !ids.Contains(rest[..end].ToString()))
            {
                ids.Add(rest[..end].ToString());
            }
        }

        return ids;
    }

    /// <summary>Tears down every chain of <paramref name="network"/> whose container id is not in <paramref name="keep"/>.</summary>
    public static void TeardownAllExcept(string network, IReadOnlySet<string> keep, bool ipv6 = false)
    {
        ArgumentNullException.ThrowIfNull(keep);
        foreach (var id in ContainerIds(network, IptablesRestore.Save("nat", ipv6)).Where(id => !keep.Contains(id)))
        {
            Teardown(network, id, ipv6);
        }
    }

    // iptables-save prints comments in double quotes with inner quotes escaped; match that so lookups compare equal.
    private static string Quote(string s) => "\"" + s.Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
}
