using Loom.Linux.Interop;

namespace Loom.Linux;

/// <summary>
/// A netlink request the kernel rejected: errno, the operation (e.g. RTM_NEWLINK) with its subject,
/// and the extended-ACK text (NLMSGERR_ATTR_MSG) when the kernel supplied one.
/// </summary>
public sealed class NetlinkException : IOException
{
    public NetlinkException() { }

    public NetlinkException(string message) : base(message) { }

    public NetlinkException(string message, Exception innerException) : base(message, innerException) { }

    public NetlinkException(int errno, string operation, string? subject, string? kernelMessage)
        : base(Format(errno, operation, subject, kernelMessage))
    {
        Errno = errno;
        Operation = operation;
        Subject = subject;
        KernelMessage = kernelMessage;
        HResult = errno;
    }

    /// <summary>Positive errno, e.g. 17 (EEXIST).</summary>
    public int Errno { get; }

    /// <summary>The request type, e.g. "RTM_NEWROUTE".</summary>
    public string Operation { get; } = "";

    /// <summary>What the request was about (link name, prefix...), if known.</summary>
    public string? Subject { get; }

    /// <summary>The kernel's extended-ACK message, if any.</summary>
    public string? KernelMessage { get; }

    private static string Format(int errno, string operation, string? subject, string? kernelMessage) =>
        $"{operation}{(subject is null ? "" : " " + subject)}: {Libc.StrError(errno)} (errno {errno})"
        + (string.IsNullOrEmpty(kernelMessage) ? "" : ": " + kernelMessage);
}
