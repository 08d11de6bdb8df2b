using System.Globalization;
using System.Runtime.InteropServices;

using Loom.Linux.Bpf;
using Loom.Testing;

using TestShell = Loom.Testing.Shell;

namespace Loom.Linux.Tests.Bpf;

/// <summary>
/// Where the compiled BPF objects are, and unique names for this run's bpffs pins and cgroups:
/// <c>loom-test-&lt;pid&gt;-&lt;n&gt;-&lt;tag&gt;</c>. The first use sweeps those left by killed runs (pid dead).
/// </summary>
internal static class BpfTestEnv
{
    public const string Base = "loom-test-";
    public const string CgroupRoot = "/sys/fs/cgroup/unified";

    private static readonly Lazy<int> Swept = new(() => Sweep(BpfFs.DefaultRoot, CgroupRoot));
    private static int _counter;

    public static string ObjectPath(string file)
    {
        var dir = Environment.GetEnvironmentVariable("LOOM_BPF_DIR") is { Length: > 0 } env ? env : Path.Combine(RepoPaths.Root, "out", "bpf");
        var path = Path.Combine(dir, file);
        return File.Exists(path) ? path : throw new InvalidOperationException($"{path} is missing: run `make build` (it runs make -C bpf)");
    }

    public static string UniqueName(string tag)
    {
        _ = Swept.Value;
        return string.Create(CultureInfo.InvariantCulture, $"{RunPrefix.For(Base)}{Interlocked.Increment(ref _counter)}-{tag}");
    }

    /// <summary>Removes <c>loom-test-&lt;dead pid&gt;-*</c> pin trees and (empty) cgroups; returns how many.</summary>
    public static int Sweep(string bpfRoot, string cgroupRoot)
    {
        var n = 0;
        foreach (var dir in Stale(bpfRoot))
        {
            BpfFs.RemoveTree(dir);
            n++;
        }

        foreach (var dir in Stale(cgroupRoot))
        {
            // Programs attached to a cgroup are released when it is removed; one still holding processes stays.
            if (TestCgroup.TryRemove(dir))
            {
                n++;
            }
        }

        return n;
    }

    private static string[] Stale(string root) =>
        Directory.Exists(root)
            ? Directory.GetFileSystemEntries(root, Base + "*")
                .Where(p => RunPrefix.TryParsePid(Path.GetFileName(p), Base, out var pid) && pid != Environment.ProcessId && !RunPrefix.IsAlive(pid))
                .ToArray()
            : [];
}

/// <summary>A directory of pins under /sys/fs/bpf for one test, removed on Dispose.</summary>
internal sealed class TestPinDir : IDisposable
{
    public TestPinDir(string tag = "pins")
    {
        BpfFs.EnsureMounted();
        Path = System.IO.Path.Combine(BpfFs.DefaultRoot, BpfTestEnv.UniqueName(tag));
    }

    public string Path { get; }

    public void Dispose() => BpfFs.RemoveTree(Path);
}

/// <summary>
/// A child cgroup of the cgroup2 mount that this test creates and owns (never the root cgroup); removed on
/// Dispose, which also detaches whatever BPF programs are still attached to it.
/// </summary>
internal sealed partial class TestCgroup : IDisposable
{
    public TestCgroup(string tag = "cg")
    {
        Path = System.IO.Path.Combine(BpfTestEnv.CgroupRoot, BpfTestEnv.UniqueName(tag));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Add(int pid) => File.WriteAllText(System.IO.Path.Combine(Path, "cgroup.procs"), pid.ToString(CultureInfo.InvariantCulture));

    public IReadOnlyList<int> Pids() =>
        File.ReadAllLines(System.IO.Path.Combine(Path, "cgroup.procs")).Where(l => l.Length > 0).Select(l => int.Parse(l, CultureInfo.InvariantCulture)).ToArray();

    public void Dispose()
    {
        if (!TestShell.WaitFor(() => TryRemove(Path), TimeSpan.FromSeconds(5)))
        {
            throw new InvalidOperationException($"cannot remove cgroup {Path}: still has processes {string.Join(' ', Pids())}");
        }
    }

    /// <summary>rmdir (cgroupfs directories are removed with rmdir only, not by deleting their files).</summary>
    public static bool TryRemove(string path) =>
        rmdir(path) == 0 || Marshal.GetLastPInvokeError() == 2 /* ENOENT */;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int rmdir(string path);
}
