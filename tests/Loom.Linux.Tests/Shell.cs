using System.Diagnostics;
using System.Globalization;

namespace Loom.Linux.Tests;

/// <summary>Test-only cross-checks with iproute2 (read-only commands, or commands scoped with `ip -n`).</summary>
internal static class Shell
{
    public static string Run(string file, string args)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEnd();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return p.ExitCode == 0 ? stdout : throw new InvalidOperationException($"{file} {args}: exit {p.ExitCode}: {stderr}");
    }

    /// <summary>Inode number of a path (follows /proc magic links), via stat(1).</summary>
    public static ulong Inode(string path) =>
        ulong.Parse(Run("stat", $"-L -c %i {path}").Trim(), CultureInfo.InvariantCulture);
}
