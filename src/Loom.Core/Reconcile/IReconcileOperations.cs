namespace Loom.Core.Reconcile;

/// <summary>
/// How a <see cref="Reconciler{TKey, TValue}"/> writes its desired rows into a target (kernel maps, routes,
/// firewall rules, files). Update and Delete act on one row and must be idempotent (a retry may repeat them).
/// </summary>
public interface IReconcileOperations<TKey, TValue>
    where TKey : notnull
{
    /// <summary>Makes the target hold <paramref name="value"/> at <paramref name="key"/> (create or replace).</summary>
    Task UpdateAsync(TKey key, TValue value, CancellationToken cancellationToken);

    /// <summary>Removes <paramref name="key"/> from the target; absent already is success.</summary>
    Task DeleteAsync(TKey key, CancellationToken cancellationToken);

    /// <summary>
    /// The full pass: makes the target hold exactly <paramref name="desired"/>, rewriting entries that differ and
    /// removing ones not in it (left over by a crash or written by someone else). Returns how many entries it had
    /// to repair: drift, which should be 0 when the incremental path works.
    /// </summary>
    Task<int> PruneAsync(IReadOnlyDictionary<TKey, TValue> desired, CancellationToken cancellationToken);
}
