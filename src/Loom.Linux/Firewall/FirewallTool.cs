using System.Diagnostics;
using System.Globalization;

namespace Loom.Linux.Firewall;

/// <summary>
/// Runs the firewall's own tools (iptables-restore, iptables-save, nft) with stdin fed and both outputs read. The child
/// inherits the calling thread's network namespace.
/// </summary>
public static class FirewallTool
{
    /// <summary>How long a tool may run before it is killed: iptables waits at most 5 s for the xtables lock (<c>-w 5</c>).</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Added to <see cref="DefaultTimeout"/> per MiB of input: a full iptables-restore of 10,000 Services is several MiB
    /// and took minutes on a loaded 2-core machine (iptables-nft checks every rule); it must finish, not be killed.
    /// </summary>
    public static readonly TimeSpan TimeoutPerMiB = TimeSpan.FromSeconds(60);

    /// <summary>The default limit for an input of <paramref name="stdin"/>: <see cref="DefaultTimeout"/> plus <see cref="TimeoutPerMiB"/> per MiB.</summary>
    public static TimeSpan TimeoutFor(string? stdin) =>
        DefaultTimeout + (TimeoutPerMiB * ((stdin?.Length ?? 0) / (1024.0 * 1024.0)));

    /// <summary>
    /// Runs <paramref name="tool"/> (looked up in the sbin/bin directories) in the calling thread's network namespace. A
    /// tool still running after <paramref name="timeout"/> (default <see cref="TimeoutFor"/> its input) is killed with its
    /// children and reported as a <see cref="FirewallException"/>: callers hold locks while it runs, and a hung tool
    /// must not stall them forever.
    /// </summary>
    public static (int Code, string Stdout, string Stderr) Run(string tool, string[] args, string? stdin, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(args);
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
        // Fed in the background: a tool that does not read its input must not block us on a full pipe, past the timeout.
        var stdinTask = stdin is null ? Task.CompletedTask : FeedAsync(p.StandardInput, stdin);
        var limit = timeout ?? TimeoutFor(stdin);
        if (!p.WaitForExit(limit))
        {
            try
            {
                p.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // it exited meanwhile
            }

            p.WaitForExit();
            throw new FirewallException(string.Create(CultureInfo.InvariantCulture,
                $"{tool} {string.Join(' ', args)} did not finish within {limit.TotalSeconds:0.###} s and was killed"));
        }

        p.WaitForExit(); // and its output streams reached their end
        stdinTask.GetAwaiter().GetResult();
        return (p.ExitCode, stdoutTask.GetAwaiter().GetResult(), stderrTask.GetAwaiter().GetResult());
    }

    private static async Task FeedAsync(StreamWriter input, string text)
    {
        try
        {
            await input.WriteAsync(text).ConfigureAwait(false);
            input.Close();
        }
        catch (IOException)
        {
            // The tool exited without reading all of it (EPIPE); its exit code and stderr say why.
        }
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
