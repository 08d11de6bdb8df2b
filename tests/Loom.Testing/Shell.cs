using System.Diagnostics;

namespace Loom.Testing;

/// <summary>What an external command printed and returned.</summary>
public sealed record ShellRun(string Command, int ExitCode, string Stdout, string Stderr)
{
    public bool Ok => ExitCode == 0;

    public override string ToString() => $"$ {Command}\nexit {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}";
}

/// <summary>
/// Runs host tools (nsenter, iptables-save, curl, podman) for tests. Anything that touches the network goes through
/// <see cref="InNetns"/>, which wraps the command in <c>nsenter --net=/var/run/netns/NAME</c>: never in the root namespace.
/// </summary>
public static class Shell
{
    public static ShellRun Run(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        // No proxy: test traffic stays between the test's namespaces.
        foreach (var proxy in new[] { "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY" })
        {
            psi.Environment.Remove(proxy);
        }

        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        var text = file + " " + string.Join(' ', psi.ArgumentList);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start " + text);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout ?? TimeSpan.FromSeconds(60)))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            return new ShellRun(text, -1, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult() + "\n(killed: timed out)");
        }

        return new ShellRun(text, p.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
    }

    /// <summary>Runs a command inside the named network namespace (nsenter keeps /sys and the cgroup mounts intact).</summary>
    public static ShellRun InNetns(string netns, IEnumerable<string> command, IReadOnlyDictionary<string, string>? env = null, TimeSpan? timeout = null) =>
        Run(Require("nsenter"), new[] { $"--net=/var/run/netns/{netns}", "--" }.Concat(command), env, timeout);

    /// <summary>
    /// Runs a command in a cgroup of the test's own and then in a network namespace: the process joins the cgroup
    /// while it waits on stdin (`ip netns exec` would remount /sys and hide the cgroup files), then enters the
    /// namespace, so cgroup BPF programs (socket LB) see its connect(). Proxy variables are dropped: the command talks
    /// only to lab addresses. Throws <see cref="TimeoutException"/> past <paramref name="timeoutMs"/>.
    /// </summary>
    public static ShellRun InCgroupAndNetns(string netns, string cgroupDir, string[] argv, int timeoutMs = 20_000)
    {
        var command = string.Join(' ', new[] { Require("nsenter"), $"--net=/var/run/netns/{netns}", "--" }.Concat(argv).Select(Quote));
        var psi = new ProcessStartInfo(Require("sh"))
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("read x; exec " + command);
        foreach (var proxy in new[] { "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY" })
        {
            psi.Environment.Remove(proxy);
        }

        using var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start sh");
        try
        {
            File.WriteAllText(Path.Combine(cgroupDir, "cgroup.procs"), p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            p.StandardInput.WriteLine("go");
            p.StandardInput.Close();
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(timeoutMs))
            {
                throw new TimeoutException(command + " did not finish");
            }

            return new ShellRun("(in cgroup) " + command, p.ExitCode, stdout.Result, stderr.Result);
        }
        finally
        {
            if (!p.HasExited)
            {
                p.Kill();
                p.WaitForExit();
            }
        }
    }

    private static string Quote(string a) => "'" + a.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>Starts a long-running command inside a network namespace (a server); kill it by disposing.</summary>
    public static BackgroundProcess StartInNetns(string netns, params string[] command)
    {
        var psi = new ProcessStartInfo(Require("nsenter")) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add($"--net=/var/run/netns/{netns}");
        psi.ArgumentList.Add("--");
        foreach (var a in command)
        {
            psi.ArgumentList.Add(a);
        }

        return new BackgroundProcess(Process.Start(psi) ?? throw new InvalidOperationException("cannot start " + string.Join(' ', command)));
    }

    /// <summary>Full path of a required tool; a missing one fails the test loudly (never a silent skip).</summary>
    public static string Require(string tool, string hint = "run `make deps` (podman, runc, jq, busybox-static, containernetworking-plugins)")
    {
        if (tool.Contains('/', StringComparison.Ordinal))
        {
            return File.Exists(tool) ? tool : throw new InvalidOperationException($"required file {tool} is missing: {hint}");
        }

        foreach (var dir in "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".Split(':'))
        {
            var path = Path.Combine(dir, tool);
            if (File.Exists(path))
            {
                return path;
            }
        }

        throw new InvalidOperationException($"required tool {tool} is not installed: {hint}");
    }

    /// <summary>Polls until the predicate holds or the timeout passes; returns whether it held.</summary>
    public static bool WaitFor(Func<bool> predicate, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            if (predicate())
            {
                return true;
            }

            Thread.Sleep(50);
        }

        return predicate();
    }
}

/// <summary>A process started by a test; Dispose kills it (and only it, by its own id) and reaps it.</summary>
public sealed class BackgroundProcess(Process process) : IDisposable
{
    public Process Process { get; } = process;

    public bool HasExited => Process.HasExited;

    public void Dispose()
    {
        try
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
                Process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // already gone
        }

        Process.Dispose();
    }
}

/// <summary>Paths of this checkout.</summary>
public static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Loom.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("cannot find the repository root (Loom.slnx) above " + AppContext.BaseDirectory);
    }
}
