namespace Loom.Core.Reconcile;

/// <summary>
/// Counters since start, for metrics (the agent exports them; Core does not depend on a metrics library).
/// <see cref="DriftRepaired"/> sums what full passes had to fix behind the incremental path's back.
/// </summary>
public sealed record ReconcilerStats(
    long Updates,
    long Deletes,
    long Failures,
    long FullPasses,
    long FullPassFailures,
    long DriftRepaired,
    int LastDrift,
    int Pending,
    int Errors,
    int Done,
    string? LastFullPassError);
