namespace Loom.Linux.Firewall;

/// <summary>
/// Applies rules the way kube-proxy does: one <c>iptables-restore --noflush</c> per change, fed on stdin,
/// so a batch lands atomically per table and other owners' rules are left alone.
/// </summary>
public static class IptablesRestore
{
    /// <summary>
    /// Runs <c>iptables-restore --noflush</c> in the caller's network namespace, waiting at most 5 s for another
    /// process's xtables lock (an unbounded <c>--wait</c> could stall the caller, who holds its own lock, forever).
    /// </summary>
    public static void Apply(string rules, bool ipv6 = false)
    {
        var tool = ipv6 ? "ip6tables-restore" : "iptables-restore";
        var (code, _, stderr) = FirewallTool.Run(tool, ["--noflush", "--wait=5"], rules); // bounded: FirewallTool's timeout is the backstop
        if (code != 0)
        {
            throw new FirewallException($"{tool} failed (exit {code}): {stderr.Trim()}\n--- input ---\n{rules}");
        }
    }

    /// <summary>Returns <c>iptables-save -t TABLE</c>: the rules as the kernel has them now.</summary>
    /// <summary>How long iptables-save may take (it reads the whole table; only full syncs and explain call it).</summary>
    public static readonly TimeSpan SaveTimeout = TimeSpan.FromMinutes(10);

    public static string Save(string table, bool ipv6 = false)
    {
        var tool = ipv6 ? "ip6tables-save" : "iptables-save";
        // Listing 10,000 Services' rules took minutes on a loaded 2-core machine; only a hang should be cut short.
        var (code, stdout, stderr) = FirewallTool.Run(tool, ["-t", table], null, SaveTimeout);
        if (code != 0)
        {
            throw new FirewallException($"{tool} -t {table} failed (exit {code}): {stderr.Trim()}");
        }

        return stdout;
    }
}
