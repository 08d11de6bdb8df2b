using System.Diagnostics;
using Loom.Linux;
using Loom.Testing;

namespace Loom.Bench;

/// <summary>
/// <see cref="CniRunner.Exec"/> for the bench: the same runtime-like execution (a thread that entered the node
/// namespace spawns the plugin with CNI_* in a cleared environment and the config on stdin), with one difference:
/// a plugin may exit without reading its stdin (the reference plugins do for VERSION), and the write then fails
/// with EPIPE. Container runtimes ignore that (Go's os/exec drops EPIPE on stdin); so does this.
/// </summary>
internal static class PluginExec
{
    public static CniRun Run(NetNsHandle node, string plugin, string command, string config, string? containerId, string? netns)
    {
        var psi = new ProcessStartInfo(plugin)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.Environment.Clear();
        psi.Environment["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin";
        psi.Environment["CNI_COMMAND"] = command;
        psi.Environment["CNI_IFNAME"] = "eth0";
        psi.Environment["CNI_PATH"] = $"{CniRunner.BinDir}:{CniRunner.ReferenceDir}";
        if (containerId is not null)
        {
            psi.Environment["CNI_CONTAINERID"] = containerId;
        }

        if (netns is not null)
        {
            psi.Environment["CNI_NETNS"] = netns;
        }

        using var p = NetNs.Run(node, () => Process.Start(psi)!);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        try
        {
            p.StandardInput.Write(config);
            p.StandardInput.Close();
        }
        catch (IOException)
        {
            // EPIPE: the plugin exited (or closed stdin) without reading its config; its exit code decides.
        }

        if (!p.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{plugin} {command} did not finish in 60 s");
        }

        return new CniRun(p.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
    }
}
