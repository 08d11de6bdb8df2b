using Loom.Core.Reconcile;

namespace Loom.Core.Tests.Reconcile;

public class BackoffTests
{
    [Fact]
    public void Delay_doubles_from_initial_and_stops_at_max()
    {
        var b = new Backoff(TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(500));
        Assert.Equal([100, 200, 400, 500, 500], Enumerable.Range(1, 5).Select(a => b.Delay(a).TotalMilliseconds));
        Assert.Equal(TimeSpan.FromSeconds(30), Backoff.Default.Delay(int.MaxValue));
        Assert.Throws<ArgumentOutOfRangeException>(() => b.Delay(0));
    }
}
