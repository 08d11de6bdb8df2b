namespace Loom.Core.Pool;

/// <summary>No free node CIDR is left; the message names the pools so the operator knows which to widen.</summary>
public sealed class PodCidrPoolExhaustedException : Exception
{
    public PodCidrPoolExhaustedException()
    {
    }

    public PodCidrPoolExhaustedException(string message)
        : base(message)
    {
    }

    public PodCidrPoolExhaustedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
