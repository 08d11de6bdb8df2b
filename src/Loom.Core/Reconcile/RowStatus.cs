namespace Loom.Core.Reconcile;

/// <summary>
/// A row as <c>loom status</c> shows it. <see cref="Deleting"/> rows are gone from the desired table and wait
/// for their delete to succeed. <see cref="Attempts"/> counts consecutive failures.
/// </summary>
public sealed record RowStatus<TKey, TValue>(
    TKey Key, TValue? Value, bool Deleting, RowState State, string? Error, int Attempts, DateTimeOffset? RetryAt)
    where TKey : notnull;
