namespace Loom.Core.Cni;

/// <summary>
/// A failure that the plugin reports to the runtime as a CNI error result
/// (<c>{"cniVersion","code","msg","details"}</c> on stdout, non-zero exit).
/// </summary>
public sealed class CniException : Exception
{
    public CniException(uint code, string msg, string? details = null)
        : base(string.IsNullOrEmpty(details) ? msg : $"{msg}; {details}")
    {
        Code = code;
        Msg = msg;
        Details = details;
    }

    public CniException(uint code, string msg, string? details, Exception? innerException)
        : base(string.IsNullOrEmpty(details) ? msg : $"{msg}; {details}", innerException)
    {
        Code = code;
        Msg = msg;
        Details = details;
    }

    public CniException()
        : this(CniErrorCodes.Unknown, "unknown CNI error")
    {
    }

    public CniException(string message)
        : this(CniErrorCodes.Internal, message)
    {
    }

    public CniException(string message, Exception innerException)
        : this(CniErrorCodes.Internal, message, null, innerException)
    {
    }

    /// <summary>Spec error code; see <see cref="CniErrorCodes"/>.</summary>
    public uint Code { get; }

    /// <summary>Short message characterizing the error (the spec's <c>msg</c>).</summary>
    public string Msg { get; }

    /// <summary>Longer description (the spec's <c>details</c>); omitted from JSON when empty.</summary>
    public string? Details { get; }
}
