using Loom.Linux.Interop;

namespace Loom.Linux;

/// <summary>A failed Linux system call (not netlink), with its errno.</summary>
public sealed class LinuxException : IOException
{
    public LinuxException() { }

    public LinuxException(string message) : base(message) { }

    public LinuxException(string message, Exception innerException) : base(message, innerException) { }

    public LinuxException(int errno, string operation, string? subject)
        : base(Format(errno, operation, subject))
    {
        Errno = errno;
        Operation = operation;
        HResult = errno;
    }

    public int Errno { get; }

    public string Operation { get; } = "";

    private static string Format(int errno, string operation, string? subject) =>
        $"{operation}{(subject is null ? "" : " " + subject)}: {Libc.StrError(errno)} (errno {errno})";
}
