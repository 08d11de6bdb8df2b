using System.Diagnostics;

namespace Loom.Linux.Firewall;

/// <summary>
/// Runs the firewall's own tools (iptables-restore, iptables-save, nft) with stdin fed and both outputs read. The child
/// inherits the calling thread's network namespace.
/// </summary>
public static class FirewallTool
{
    /// <summary>Runs <paramref name="tool"/> (looked up in the sbin/bin directories) in the calling thread's network namespace.</summary>
    public static (int Code, string Stdout, string Stderr) Run(string tool, string[] args, string? stdin)
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
