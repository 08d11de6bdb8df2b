using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Loom.Linux;

namespace Loom.Lab;

/// <summary>
/// Processes the lab runs inside its namespaces. A child inherits the network namespace of the thread that forks it,
/// so every spawn happens on a thread that entered the namespace (<see cref="NetNs.Run{T}"/>), not through
/// <c>ip netns exec</c> (which would also give the child a new mount namespace and hide bpffs).
/// </summary>
public static partial class LabProcesses
{
    private const int SIGKILL = 9;
    private const int SIGTERM = 15;

    /// <summary>
    /// Starts a long-running process inside <paramref name="netns"/>, in its own session (setsid) so it outlives the
    /// caller, stdin from /dev/null and stdout/stderr appended to <paramref name="logFile"/>. Returns its pid.
    /// </summary>
    public static int StartDetached(string netns, string logFile, string executable, IEnumerable<string> args, string? cgroup = null)
    {
        // sh only sets up the redirections (and the cgroup: it moves itself before anything else runs) and execs
        // setsid, which execs the program (no fork: the child of Process.Start is not a process group leader), so
        // the pid we get is the program's own.
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("log=$1; cg=$2; shift 2; if [ -n \"$cg\" ]; then echo $$ > \"$cg/cgroup.procs\" || exit 1; fi; exec /usr/bin/setsid \"$@\" </dev/null >>\"$log\" 2>&1");
        psi.ArgumentList.Add("loom-lab");
        psi.ArgumentList.Add(logFile);
        psi.ArgumentList.Add(cgroup ?? "");
        psi.ArgumentList.Add(executable);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var ns = NetNs.Open(netns);
        using var p = NetNs.Run(ns, () => Process.Start(psi) ?? throw new LabException($"cannot start {executable}"));
        return p.Id;
    }

    /// <summary>Runs a command inside a namespace with the caller's stdio and returns its exit code.</summary>
    public static async Task<int> ExecAsync(string netns, IReadOnlyList<string> command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (command.Count == 0)
        {
            throw new LabException("no command given");
        }

        var psi = new ProcessStartInfo(command[0]) { UseShellExecute = false };
        foreach (var a in command.Skip(1))
        {
            psi.ArgumentList.Add(a);
        }

        using var ns = NetNs.Open(netns);
        using var p = NetNs.Run(ns, () => Process.Start(psi) ?? throw new LabException($"cannot start {command[0]}"));
        await p.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        return p.ExitCode;
    }

    /// <summary>Runs a command inside a namespace and captures its output (for inspections and tests).</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> CaptureAsync(string netns, IReadOnlyList<string> command,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        var psi = new ProcessStartInfo(command[0])
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (var a in command.Skip(1))
        {
            psi.ArgumentList.Add(a);
        }

        using var ns = NetNs.Open(netns);
        using var p = NetNs.Run(ns, () => Process.Start(psi) ?? throw new LabException($"cannot start {command[0]}"));
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = p.StandardError.ReadToEndAsync(cancellationToken);
        await p.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        return (p.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
    }

    public static bool IsAlive(int pid) => pid > 0 && RunPrefix.IsAlive(pid) && !IsZombie(pid);

    /// <summary>SIGTERM, then SIGKILL after <paramref name="grace"/>. True if the process is gone.</summary>
    public static async Task<bool> StopAsync(int pid, TimeSpan grace)
    {
        if (!IsAlive(pid))
        {
            return true;
        }

        _ = kill(pid, SIGTERM);
        var deadline = DateTime.UtcNow + grace;
        while (DateTime.UtcNow < deadline)
        {
            if (!IsAlive(pid))
            {
                return true;
            }

            await Task.Delay(50).ConfigureAwait(false);
        }

        _ = kill(pid, SIGKILL);
        for (var i = 0; i < 40 && IsAlive(pid); i++)
        {
            await Task.Delay(50).ConfigureAwait(false);
        }

        return !IsAlive(pid);
    }

    public static void Kill(int pid) => _ = kill(pid, SIGKILL);

    /// <summary>
    /// The process's start time (field 22 of /proc/PID/stat, clock ticks since boot); null if it is gone. With the pid
    /// it names one process for good: a pid the kernel hands out again comes with a later start time.
    /// </summary>
    public static ulong? StartTime(int pid)
    {
        if (pid <= 0)
        {
            return null;
        }

        try
        {
            var stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            // comm (field 2) may hold spaces and parentheses: count fields from its closing one (field 3 follows it).
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return fields.Length > 19 && ulong.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var t) ? t : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>True if the recorded process (pid and start time) is still the one running under that pid.</summary>
    public static bool IsRecordedAlive(int? pid, ulong? startTime) =>
        pid is { } p && startTime is { } t && IsAlive(p) && StartTime(p) == t;

    /// <summary>
    /// Processes that live in one of the given network namespaces (workloads, exec'd shells): namespaces the lab
    /// made, so whatever runs in them is the lab's. Matched by namespace inode, never by pid or command line.
    /// </summary>
    public static IReadOnlyList<int> FindInNamespaces(IEnumerable<string> netnsNames)
    {
        var nsIds = new HashSet<string>(StringComparer.Ordinal);
        foreach (var name in netnsNames)
        {
            if (NamespaceId(name) is { } id)
            {
                nsIds.Add(id);
            }
        }

        var found = new List<int>();
        if (nsIds.Count == 0)
        {
            return found;
        }

        foreach (var entry in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                || pid == Environment.ProcessId)
            {
                continue;
            }

            try
            {
                if (new FileInfo(Path.Combine(entry, "ns", "net")).LinkTarget is { } net && nsIds.Contains(net))
                {
                    found.Add(pid);
                }
            }
            catch (IOException)
            {
                // gone meanwhile
            }
            catch (UnauthorizedAccessException)
            {
                // kernel thread or foreign
            }
        }

        return found;
    }

    /// <summary>"net:[inode]" of a named namespace, as /proc/PID/ns/net shows it; null if it does not exist.</summary>
    public static string? NamespaceId(string netns)
    {
        if (!NetNs.Exists(netns))
        {
            return null;
        }

        try
        {
            using var h = NetNs.Open(netns);
            return NetNs.Run(h, () => new FileInfo("/proc/thread-self/ns/net").LinkTarget);
        }
        catch (LinuxException)
        {
            return null;
        }
    }

    private static bool IsZombie(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            var close = stat.LastIndexOf(')');
            return close > 0 && close + 2 < stat.Length && stat[close + 2] is 'Z' or 'X';
        }
        catch (IOException)
        {
            return false;
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);
}
