namespace Loom.Datapath.Services;

/// <summary>Runs the <c>nft</c> binary in the caller's network namespace (the child inherits the calling thread's).</summary>
internal static class Nft
{
    /// <summary>Applies a script as one transaction (<c>nft -f -</c>): all of it lands or none.</summary>
    public static void Apply(string script)
    {
        var (code, _, stderr) = Run(["-f", "-"], script);
        if (code != 0)
        {
            throw new InvalidOperationException($"nft -f failed (exit {code}): {stderr.Trim()}\n--- input ---\n{script}");
        }
    }

    /// <summary><c>nft [-j] list table ip NAME</c>, or null when the table does not exist.</summary>
    public static string? ListTable(string table, bool json)
    {
        string[] args = json ? ["-j", "list", "table", "ip", table] : ["list", "table", "ip", table];
        var (code, stdout, stderr) = Run(args, null);
        if (code == 0)
        {
            return stdout;
        }

        return stderr.Contains("No such file or directory", StringComparison.Ordinal)
            ? null
            : throw new InvalidOperationException($"nft list table ip {table} failed (exit {code}): {stderr.Trim()}");
    }

    /// <summary>Whether <c>ip NAME</c> exists, from <c>nft list tables ip</c> (which lists no contents, so stays cheap).</summary>
    public static bool TableExists(string table)
    {
        var (code, stdout, stderr) = Run(["list", "tables", "ip"], null);
        return code == 0
            ? stdout.Split('\n').Any(l => l.Trim() == $"table ip {table}")
            : throw new InvalidOperationException($"nft list tables ip failed (exit {code}): {stderr.Trim()}");
    }

    private static (int Code, string Stdout, string Stderr) Run(string[] args, string? stdin) => Loom.Linux.Firewall.FirewallTool.Run("nft", args, stdin);
}
