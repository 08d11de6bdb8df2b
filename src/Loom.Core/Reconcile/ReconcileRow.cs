namespace Loom.Core.Reconcile;

/// <summary>A row's mutable bookkeeping; <see cref="Version"/> changes on every Upsert/Delete so a write that raced one is not marked Done.</summary>
internal sealed class ReconcileRow<TValue>
{
    public TValue? Value { get; set; }

    public bool Deleting { get; set; }

    public RowState State { get; set; } = RowState.Pending;

    public string? Error { get; set; }

    public int Attempts { get; set; }

    public DateTimeOffset? RetryAt { get; set; }

    public long Version { get; set; }

    /// <summary>Order of the last change, so rows are written in the order controllers changed them.</summary>
    public long Seq { get; set; }

    public bool RunnableAt(DateTimeOffset now) => State == RowState.Pending || (State == RowState.Error && RetryAt <= now);
}
