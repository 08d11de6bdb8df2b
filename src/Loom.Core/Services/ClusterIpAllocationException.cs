namespace Loom.Core.Services;

/// <summary>A ClusterIP could not be assigned; <see cref="Error"/> says why, the message says which address.</summary>
public sealed class ClusterIpAllocationException : Exception
{
    public ClusterIpAllocationException()
    {
    }

    public ClusterIpAllocationException(string message)
        : base(message)
    {
    }

    public ClusterIpAllocationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public ClusterIpAllocationException(ClusterIpAllocationError error, string message)
        : base(message) => Error = error;

    public ClusterIpAllocationError Error { get; }
}
