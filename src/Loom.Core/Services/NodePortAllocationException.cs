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

    public NodePortAllocationException(NodePortAllocationError error, int port, string message)
        : base(message)
    {
        Error = error;
        Port = port;
    }

    public NodePortAllocationError Error { get; }

    /// <summary>The port asked for (0 when the range is full).</summary>
    public int Port { get; }
}
