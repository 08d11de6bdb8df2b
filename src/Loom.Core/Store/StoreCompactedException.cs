namespace Loom.Core.Store;

/// <summary>A watch asked for history older than the store keeps; the watcher must re-list and watch from the list's revision.</summary>
public sealed class StoreCompactedException : Exception
{
    public StoreCompactedException()
    {
    }

    public StoreCompactedException(string message)
        : base(message)
    {
    }

    public StoreCompactedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public StoreCompactedException(long requested, long compacted)
        : base($"revision {requested} is compacted; history starts after {compacted}")
    {
        CompactedRevision = compacted;
    }

    public long CompactedRevision { get; }
}
