using Loom.Core.Controllers;

namespace Loom.Agent;

/// <summary>
/// A cheap read of the store's revision with a short deadline once no store call succeeded for <see cref="Every"/>:
/// controllers may have nothing to ask the store for a while, and a watch on a frozen etcd just goes quiet, so this
/// notices the outage (and restarts the watches through <see cref="StoreHealth.ReadsBroken"/>) and its end. Another
/// call's success (a heartbeat, a pass) proves as much, so the probe then waits from it instead of reading: one
/// wake-up fewer in an idle agent.
/// </summary>
internal sealed class StoreProbe(GuardedStore store) : IController
{
    private long _passes;

    public TimeSpan Every { get; init; } = TimeSpan.FromSeconds(2);

    public string Name => "store";

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var probe = store.WithDeadline(Every);
        var every = (long)Every.TotalMilliseconds;
        while (true)
        {
            store.Health.Publish(); // the gauges, also while another call's success stands in for the probe
            var quiet = Environment.TickCount64 - store.Health.LastSuccess;
            if (quiet < every && store.Health.IsReachable)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(every - quiet), cancellationToken).ConfigureAwait(false);
                continue;
            }

            try
            {
                await probe.GetRevisionAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception) when (!cancellationToken.IsCancellationRequested)
            {
                // An outage is recorded by the store's health; the next tick is the retry.
            }

            Interlocked.Increment(ref _passes);
            store.Health.Publish();
            await Task.Delay(Every, cancellationToken).ConfigureAwait(false);
        }
    }

    public ControllerStatus Describe() => store.Health.Outage is { } o
        ? new ControllerStatus(Name, false, $"unreachable since {o.Since:yyyy-MM-ddTHH:mm:ssZ}", Interlocked.Read(ref _passes), o.Reason)
        : new ControllerStatus(Name, true, "reachable", Interlocked.Read(ref _passes));
}
