namespace Loom.Core.Reconcile;

/// <summary>
/// A desired table that controllers write and a worker makes true in a target, row by row, with per-row status,
/// retries and a periodic full pass. Controllers never touch the target themselves.
/// </summary>
public interface IReconciler<TKey, TValue>
    where TKey : notnull
{
    /// <summary>Sets the desired value of a row; a value equal to the current desired one changes nothing.</summary>
    void Upsert(TKey key, TValue value);

    /// <summary>Removes a row from the desired table; its delete is applied (and retried) like an update.</summary>
    void Delete(TKey key);

    /// <summary>The desired rows (not those being deleted).</summary>
    IReadOnlyDictionary<TKey, TValue> Desired { get; }

    /// <summary>Every row with its state, in the order they last changed.</summary>
    IReadOnlyList<RowStatus<TKey, TValue>> Status();

    ReconcilerStats Stats { get; }

    /// <summary>
    /// Completes when nothing is runnable: no pending row, no retry due, no full pass due (by the clock or
    /// requested). Rows waiting for a later retry do not count. Requires <c>RunAsync</c> to be running.
    /// </summary>
    Task WaitIdleAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Runs a full pass as soon as pending rows are written and returns its drift. Call it once the desired table is
    /// complete (e.g. after the caches synced) so a restarted agent removes what its previous life left behind.
    /// </summary>
    Task<int> FullPassAsync(CancellationToken cancellationToken = default);
}
