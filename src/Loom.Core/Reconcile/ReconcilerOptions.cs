namespace Loom.Core.Reconcile;

public sealed record ReconcilerOptions
{
    /// <summary>A name for errors and status, e.g. "routes" or "lb4-services".</summary>
    public string Name { get; init; } = "reconciler";

    /// <summary>How often the full pass (Prune) runs; <see cref="Timeout.InfiniteTimeSpan"/> turns it off.</summary>
    public TimeSpan FullPassInterval { get; init; } = TimeSpan.FromMinutes(5);

    public Backoff RetryBackoff { get; init; } = Backoff.Default;
}
