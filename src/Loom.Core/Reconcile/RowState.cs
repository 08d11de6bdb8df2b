namespace Loom.Core.Reconcile;

public enum RowState
{
    /// <summary>Changed and not yet written to the target.</summary>
    Pending,

    /// <summary>The target holds the desired value.</summary>
    Done,

    /// <summary>The last write failed; it is retried after a backoff.</summary>
    Error,
}
