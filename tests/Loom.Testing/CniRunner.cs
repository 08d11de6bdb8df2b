using System.Diagnostics;
using System.Text;
using Loom.Linux;

namespace Loom.Testing;

/// <summary>What one plugin execution printed and returned.</summary>
public sealed record CniRun(int ExitCode, string Stdout, string Stderr)
{
    public bool Ok => ExitCode == 0;

    public override string ToString() => $"exit {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}";
}

/// <summary>
/// Executes CNI plugins exactly as a container runtime does: a fresh process with CNI_* in its environment,
/// the config on stdin, started from inside the node's network namespace (the child inherits the namespace
/// of the thread that forks it, so the spawn happens on a thread that entered the node).
/// </summary>
public static class CniRunner
{
    /// <summary>out/bin of this checkout, where `make build` publishes loom-cni; LOOM_BIN_DIR overrides.</summary>
    public static string BinDir { get; } = FindBinDir();

    public static string LoomCni => Path.Combine(BinDir, "loom-cni");

    /// <summary>Debian's reference plugins (containernetworking-plugins).</summary>
    public const string ReferenceDir = "/usr/lib/cni";

    public static CniRun Exec(
        NetNsHandle node,
        string plugin,
        string command,
        string config,
        string? containerId = null,
        string? netns = null,
        string? ifName = "eth0",
        string? cniArgs = null,
        string? cniPath = null,
        IReadOnlyDictionary<string, string>? extraEnv = null)
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
        Set(psi, "CNI_CONTAINERID", containerId);
        Set(psi, "CNI_NETNS", netns);
        Set(psi, "CNI_IFNAME", ifName);
        Set(psi, "CNI_ARGS", cniArgs);
        psi.Environment["CNI_PATH"] = cniPath ?? $"{BinDir}:{ReferenceDir}";
        foreach (var (k, v) in extraEnv ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
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
            // A plugin may exit without reading stdin (the reference bridge does for VERSION); runtimes ignore it.
        }
        if (!p.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{plugin} {command} did not finish in 60 s");
        }

        return new CniRun(p.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
    }

    private static void Set(ProcessStartInfo psi, string key, string? value)
    {
        if (value is not null)
        {
            psi.Environment[key] = value;
        }
    }

    private static string FindBinDir()
    {
        if (Environment.GetEnvironmentVariable("LOOM_BIN_DIR") is { Length: > 0 } env)
        {
            return env;
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Loom.slnx")))
            {
                return Path.Combine(dir.FullName, "out", "bin");
            }
        }

        throw new InvalidOperationException("cannot find the repository root (Loom.slnx) above " + AppContext.BaseDirectory);
    }

    /// <summary>Joins text lines with \n: handy for building expected iptables output.</summary>
    public static string Lines(params string[] lines) => new StringBuilder().AppendJoin('\n', lines).Append('\n').ToString();
}
