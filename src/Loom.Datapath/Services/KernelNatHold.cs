using System.Net;

namespace Loom.Datapath.Services;

/// <summary>
/// The kernel translates the packets of a flow it NATed (kube-proxy's DNAT to a Service backend) only where some NAT
/// chain is registered at the packet's hook: once the last one goes, as when kube-proxy's rules are flushed after a
/// switch to eBPF, an established flow goes on untranslated and dies. While such a flow lives, an empty NAT table
/// (no rule: it NATs nothing new) keeps the hooks registered; it goes once the last of those flows has ended.
/// </summary>
public static class KernelNatHold
{
    public const string Table = "loom-nat-hold";

    // Every hook NAT translates at: DNAT at prerouting and output, its reverse at input and postrouting.
    private const string Script = $$"""
        table ip {{Table}} {
          chain prerouting { type nat hook prerouting priority dstnat; }
          chain output { type nat hook output priority -100; }
          chain input { type nat hook input priority 100; }
          chain postrouting { type nat hook postrouting priority srcnat; }
        }

        """;

    /// <summary>Before kube-proxy's rules go: holds the NAT hooks if a flow they translated is still live.</summary>
    public static bool HoldIfNeeded()
    {
        if (DnatedFlows(ReadConntrack()) == 0 || Nft.TableExists(Table))
        {
            return false;
        }

        Nft.Apply(Script);
        return true;
    }

    /// <summary>Lets the hooks go once no such flow is left; true if the table went.</summary>
    public static bool ReleaseIfIdle()
    {
        if (!Nft.TableExists(Table) || DnatedFlows(ReadConntrack()) > 0)
        {
            return false;
        }

        Nft.Apply($"delete table ip {Table}\n");
        return true;
    }

    /// <summary>
    /// Live flows whose reply comes from another address than the one they were sent to (destination NAT), in
    /// /proc/net/nf_conntrack's text ("... tcp 6 T ESTABLISHED src=A dst=B sport=P dport=Q src=C dst=A ..."): every TCP
    /// flow not closed yet (a connect whose SYN-ACK is on its way counts: it is lost untranslated too) and every UDP one
    /// (a DNS answer on its way).
    /// </summary>
    public static int DnatedFlows(IEnumerable<string> conntrack)
    {
        ArgumentNullException.ThrowIfNull(conntrack);
        var count = 0;
        foreach (var line in conntrack)
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var live = f.Contains("udp") || (f.Contains("tcp") && !f.Contains("TIME_WAIT") && !f.Contains("CLOSE"));
            if (!live)
            {
                continue;
            }

            var dsts = f.Where(x => x.StartsWith("dst=", StringComparison.Ordinal)).ToList();
            var srcs = f.Where(x => x.StartsWith("src=", StringComparison.Ordinal)).ToList();
            if (dsts.Count >= 1 && srcs.Count >= 2 && IPAddress.TryParse(dsts[0][4..], out var sentTo) && IPAddress.TryParse(srcs[1][4..], out var repliedFrom)
                && !sentTo.Equals(repliedFrom))
            {
                count++;
            }
        }

        return count;
    }

    // This thread's namespace's table (procfs follows the reader's network namespace); none without conntrack loaded.
    private static string[] ReadConntrack()
    {
        const string path = "/proc/net/nf_conntrack";
        try
        {
            return File.Exists(path) ? File.ReadAllLines(path) : [];
        }
        catch (IOException)
        {
            return [];
        }
    }
}
