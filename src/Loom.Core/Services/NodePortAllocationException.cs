namespace Loom.Core.Services;

/// <summary>A node port could not be assigned; <see cref="Error"/> says why, the message names the field and the port.</summary>
public sealed class NodePortAllocationException : Exception
{
    public NodePortAllocationException()
    {
    }

    public NodePortAllocationException(string message)
        : base(message)
    {
    }

    public NodePortAllocationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public NodePortAllocationException(NodePortAllocationError error, string message)
        : base(message) => Error = error;

    public NodePortAllocationError Error { get; }
}
