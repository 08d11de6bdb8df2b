using System.Diagnostics;

namespace Loom.Linux.Firewall;

/// <summary>
/// Applies rules the way kube-proxy does: one <c>iptables-restore --noflush</c> per change, fed on stdin,
/// so a batch lands atomically per table and other owners' rules are left alone.
/// </summary>
public static class IptablesRestore
{
    /// <summary>Runs <c>iptables-restore --noflush</c> in the caller's network namespace.</summary>
    public static void Apply(string rules, bool ipv6 = false)
    {
        var tool = ipv6 ? "ip6tables-restore" : "iptables-restore";
        var (code, _, stderr) = Run(tool, ["--noflush", "--wait"], rules);
        if (code != 0)
        {
            throw new FirewallException($"{tool} failed (exit {code}): {stderr.Trim()}\n--- input ---\n{rules}");
        }
    }

    /// <summary>Returns <c>iptables-save -t TABLE</c>: the rules as the kernel has them now.</summary>
    public static string Save(string table, bool ipv6 = false)
    {
        var tool = ipv6 ? "ip6tables-save" : "iptables-save";
        var (code, stdout, stderr) = Run(tool, ["-t", table], null);
        if (code != 0)
        {
            throw new FirewallException($"{tool} -t {table} failed (exit {code}): {stderr.Trim()}");
        }

        return stdout;
    }

    internal static (int Code, string Stdout, string Stderr) Run(string tool, string[] args, string? stdin)
    {
        var psi = new ProcessStartInfo(Resolve(tool))
        {
            RedirectStandardInput = stdin is not null,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi) ?? throw new FirewallException($"cannot start {tool}");
        var stderrTask = p.StandardError.ReadToEndAsync();
        var stdoutTask = p.StandardOutput.ReadToEndAsync();
        if (stdin is not null)
        {
            p.StandardInput.Write(stdin);
            p.StandardInput.Close();
        }

        p.WaitForExit();
        return (p.ExitCode, stdoutTask.GetAwaiter().GetResult(), stderrTask.GetAwaiter().GetResult());
    }

    // The plugin runs with whatever PATH the runtime gives it, often none: look in the usual places.
    private static string Resolve(string tool)
    {
        foreach (var dir in new[] { "/usr/sbin", "/sbin", "/usr/bin", "/bin" })
        {
            var path = Path.Combine(dir, tool);
            if (File.Exists(path))
            {
                return path;
            }
        }

        return tool;
    }
}
