using Loom.Testing;

namespace Loom.Package.Tests;

/// <summary>
/// A throwaway root with an empty dpkg database: packages are installed into it with <c>dpkg --root</c>, their
/// maintainer scripts run outside a chroot with <c>DPKG_ROOT</c> set (--force-script-chrootless; the scripts honour it
/// and leave systemd alone), and dependencies are not checked (--force-depends: the root has no iptables).
/// </summary>
public sealed class DebRoot : IDisposable
{
    public DebRoot()
    {
        Root = Directory.CreateTempSubdirectory("loom-debroot-").FullName;
        foreach (var dir in new[] { "var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "var/log" })
        {
            Directory.CreateDirectory(Path.Combine(Root, dir));
        }

        File.WriteAllText(Path.Combine(Root, "var/lib/dpkg/status"), "");
        File.WriteAllText(Path.Combine(Root, "var/lib/dpkg/available"), "");
    }

    public string Root { get; }

    /// <summary>A path of the root given as the installed system sees it, e.g. "/usr/bin/loom".</summary>
    public string this[string path] => Path.Combine(Root, path.TrimStart('/'));

    public ShellRun Dpkg(params string[] args) =>
        Shell.Run(Which("dpkg")!, new[] { $"--root={Root}", "--force-script-chrootless", "--force-depends", "--log=/dev/null" }.Concat(args),
            timeout: TimeSpan.FromMinutes(3));

    /// <summary>dpkg's status of a package in this root ("install ok installed"), or null when it knows none.</summary>
    public string? Status(string package)
    {
        var r = Shell.Run(Which("dpkg-query")!, [$"--root={Root}", "-W", "-f=${db:Status-Abbrev}|${Status}", package]);
        return r.Ok ? r.Stdout.Split('|')[1].Trim() : null;
    }

    /// <summary>Every file, symlink and directory of the root but dpkg's own database and logs, as root-relative paths.</summary>
    public SortedSet<string> Files() =>
        new(Directory.EnumerateFileSystemEntries(Root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
            .Select(p => "/" + Path.GetRelativePath(Root, p))
            .Where(p => !p.StartsWith("/var/lib/dpkg", StringComparison.Ordinal) && !p.StartsWith("/var/log", StringComparison.Ordinal)
                        && p is not "/var/lib" and not "/var"),
            StringComparer.Ordinal);

    public void Dispose() => Directory.Delete(Root, recursive: true);

    public static string? Which(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").Split(':')
        .Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists);
}
