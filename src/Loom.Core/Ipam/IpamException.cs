namespace Loom.Core.Ipam;

/// <summary>Any IPAM failure; <see cref="Kind"/> says which CNI error code fits.</summary>
public class IpamException : Exception
{
    public IpamException()
        : this(IpamErrorKind.Io, "IPAM failure")
    {
    }

    public IpamException(string message)
        : this(IpamErrorKind.Io, message)
    {
    }

    public IpamException(string message, Exception innerException)
        : this(IpamErrorKind.Io, message, innerException)
    {
    }

    public IpamException(IpamErrorKind kind, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Kind = kind;
    }

    public IpamErrorKind Kind { get; }
}
