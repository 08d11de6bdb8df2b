namespace Loom.Core.Reconcile;

/// <summary>One row to apply in a batch: an update with its value, or a delete (<see cref="IsDelete"/>, Value default).</summary>
public sealed record RowChange<TKey, TValue>(TKey Key, TValue? Value, bool IsDelete)
    where TKey : notnull;
