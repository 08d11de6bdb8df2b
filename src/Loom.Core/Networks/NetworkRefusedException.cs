namespace Loom.Core.Networks;

/// <summary>A change to the cluster's networks refused before anything was written; each error names the network and key.</summary>
public sealed class NetworkRefusedException : Exception
{
    public NetworkRefusedException()
        : this([])
    {
    }

    public NetworkRefusedException(string message)
        : this([message])
    {
    }

    public NetworkRefusedException(string message, Exception innerException)
        : base(message, innerException) => Errors = [message];

    public NetworkRefusedException(IReadOnlyList<string> errors)
        : base(string.Join("\n", errors)) => Errors = errors;

    public IReadOnlyList<string> Errors { get; }
}
