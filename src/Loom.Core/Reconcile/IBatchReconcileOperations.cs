namespace Loom.Core.Reconcile;

/// <summary>
/// Operations that apply many rows in one transaction (one iptables-restore --noflush or nft -f run): the
/// reconciler hands every runnable row to <see cref="ApplyBatchAsync"/> instead of calling Update/Delete per row.
/// A batch is all or nothing: if it throws, every row in it counts as failed and is retried.
/// </summary>
public interface IBatchReconcileOperations<TKey, TValue> : IReconcileOperations<TKey, TValue>
    where TKey : notnull
{
    Task ApplyBatchAsync(IReadOnlyList<RowChange<TKey, TValue>> changes, CancellationToken cancellationToken);
}
