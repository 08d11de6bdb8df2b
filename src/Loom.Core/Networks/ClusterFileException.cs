namespace Loom.Core.Networks;

/// <summary>A cluster or network file that is refused; each error names its line, column and key.</summary>
public sealed class ClusterFileException : Exception
{
    public ClusterFileException()
        : this([])
    {
    }

    public ClusterFileException(string message)
        : this([message])
    {
    }

    public ClusterFileException(string message, Exception innerException)
        : base(message, innerException) => Errors = [message];

    public ClusterFileException(IReadOnlyList<string> errors)
        : base(string.Join("\n", errors)) => Errors = errors;

    public IReadOnlyList<string> Errors { get; }
}
