using Loom.Core.Controllers;

namespace Loom.Agent;

/// <summary>
/// Every <see cref="Every"/>, with a short deadline: a cheap read of the store's revision, then a write that changes
/// nothing (the keep-alive of lease 0, which no one holds). Controllers may have nothing to ask the store for a while,
/// and a watch on a frozen etcd just goes quiet, so this notices the outage (and restarts the watches through
/// <see cref="StoreHealth.ReadsBroken"/>) and its end. The write notices a locked SQLite file, which still serves
/// reads: the heartbeat's lease renewal did that before it moved to a third of the lease's TTL. On SQLite it takes
/// the write lock and writes no page, so it wakes no other process's watches.
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
        while (true)
        {
            try
            {
                await probe.GetRevisionAsync(cancellationToken).ConfigureAwait(false);
                await probe.KeepAliveAsync(0, cancellationToken).ConfigureAwait(false);
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
