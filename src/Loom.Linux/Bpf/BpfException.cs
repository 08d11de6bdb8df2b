namespace Loom.Linux.Bpf;

/// <summary>
/// A failed bpf() / libbpf operation. <see cref="Errno"/> is the positive errno (or a libbpf error code
/// such as 4007 LIBBPF_ERRNO__VERIFY); <see cref="Log"/> holds what libbpf printed meanwhile — for a
/// rejected program, the verifier log.
/// </summary>
public sealed class BpfException : IOException
{
    public BpfException() { }

    public BpfException(string message) : base(message) { }

    public BpfException(string message, Exception innerException) : base(message, innerException) { }

    public BpfException(int errno, string operation, string? subject, string? log = null)
        : base(Format(errno, operation, subject, log))
    {
        Errno = errno;
        Operation = operation;
        Subject = subject ?? "";
        Log = log ?? "";
        HResult = errno;
    }

    public int Errno { get; }

    public string Operation { get; } = "";

    /// <summary>What the operation was on (a map's name, a path), if given.</summary>
    public string Subject { get; } = "";

    public string Log { get; } = "";

    /// <summary>A map had no room for a new key: E2BIG (hash maps at max_entries) or ENOSPC (LPM tries, some kernels).</summary>
    public bool IsMapFull => Errno is 7 or 28;

    internal static BpfException FromRc(int rc, string operation, string? subject = null, bool withLog = false) =>
        new(LibBpf.ErrnoOf(rc), operation, subject, withLog ? LibBpf.TakeLog() : null);

    private static string Format(int errno, string operation, string? subject, string? log)
    {
        var text = $"{operation}{(subject is null ? "" : " " + subject)}: {LibBpf.StrError(errno)} (errno {errno})";
        if (string.IsNullOrWhiteSpace(log))
        {
            return text;
        }

        // The verifier's verdict is at the end of its log; keep the tail.
        var trimmed = log.TrimEnd();
        return text + "\n" + (trimmed.Length > 4000 ? "...\n" + trimmed[^4000..] : trimmed);
    }
}
