using System.Globalization;

namespace Loom.Linux;

/// <summary>
/// Naming scheme for throw-away kernel objects: <c>&lt;base&gt;&lt;pid&gt;-</c>. The pid lets a later run
/// recognise (and sweep) objects left behind by a process that was killed before cleaning up.
/// </summary>
public static class RunPrefix
{
    /// <summary>The prefix for this process, e.g. <c>lt4711-</c> for base <c>lt</c>.</summary>
    public static string For(string baseName) =>
        string.Create(CultureInfo.InvariantCulture, $"{baseName}{Environment.ProcessId}-");

    /// <summary>Parses the pid out of <c>&lt;base&gt;&lt;digits&gt;-...</c>; false if the name does not follow the scheme.</summary>
    public static bool TryParsePid(string name, string baseName, out int pid)
    {
        pid = 0;
        if (!name.StartsWith(baseName, StringComparison.Ordinal))
        {
            return false;
        }

        var rest = name.AsSpan(baseName.Length);
        var dash = rest.IndexOf('-');
        return dash > 0
            && rest[..dash].IndexOfAnyExceptInRange('0', '9') < 0
            && int.TryParse(rest[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out pid)
            && pid > 0;
    }

    /// <summary>True if a process with this pid exists (kill(pid, 0); EPERM still means it exists).</summary>
    public static bool IsAlive(int pid) =>
        Interop.Libc.kill(pid, 0) == 0 || Interop.Libc.Errno == Interop.Libc.EPERM;
}
