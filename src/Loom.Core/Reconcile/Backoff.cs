namespace Loom.Core.Reconcile;

/// <summary>
/// Exponential backoff, doubling from <see cref="Initial"/> up to <see cref="Max"/>. No jitter: retries are
/// per row or per watch of one agent, and tests read exact due times from a fake clock.
/// </summary>
public sealed record Backoff(TimeSpan Initial, TimeSpan Max)
{
    public static Backoff Default { get; } = new(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(30));

    /// <summary>The wait before retry number <paramref name="attempt"/> (1 = the first retry).</summary>
    public TimeSpan Delay(int attempt)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(attempt, 1);
        var ticks = Initial.Ticks;
        for (var i = 1; i < attempt && ticks < Max.Ticks; i++)
        {
            ticks *= 2;
        }

        return TimeSpan.FromTicks(Math.Min(ticks, Max.Ticks));
    }
}
