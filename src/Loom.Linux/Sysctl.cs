namespace Loom.Linux;

/// <summary>
/// Kernel parameters via /proc/sys. Files under /proc/sys/net resolve against the network namespace of the
/// thread that opens them, so inside <see cref="NetNs.Run{T}"/> these act on that namespace.
/// Names use dots (net.ipv4.ip_forward); use '/' separators when a component itself contains dots
/// (net/ipv4/conf/eth0.100/rp_filter), as sysctl(8) does.
/// </summary>
public static class Sysctl
{
    public const string Root = "/proc/sys";

    public static string Get(string name)
    {
        using var handle = File.OpenHandle(PathOf(name), FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var buf = new byte[4096];
        var n = 0;
        int read;
        while ((read = RandomAccess.Read(handle, buf.AsSpan(n), n)) > 0)
        {
            n += read;
            if (n == buf.Length)
            {
                Array.Resize(ref buf, buf.Length * 2);
            }
        }

        return System.Text.Encoding.ASCII.GetString(buf, 0, n).TrimEnd('\n');
    }

    public static void Set(string name, string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        // One write at offset 0, no O_TRUNC: proc handlers parse a single write.
        using var handle = File.OpenHandle(PathOf(name), FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
        RandomAccess.Write(handle, System.Text.Encoding.ASCII.GetBytes(value + "\n"), 0);
    }

    /// <summary>Maps a sysctl name to its /proc/sys path.</summary>
    public static string PathOf(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var rel = name.Contains('/', StringComparison.Ordinal) ? name.Trim('/') : name.Replace('.', '/');
        if (rel.Split('/').Any(p => p is "" or "." or ".."))
        {
            throw new ArgumentException($"invalid sysctl name '{name}'", nameof(name));
        }

        return $"{Root}/{rel}";
    }
}
