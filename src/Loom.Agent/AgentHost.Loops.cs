using Loom.Core.Store;
using Loom.Linux.Firewall;

namespace Loom.Agent;

internal sealed partial class AgentHost
{
    /// <summary>
    /// Watches the store from <paramref name="fromRevision"/> and releases <paramref name="signal"/> for every event
    /// <paramref name="relevant"/> accepts. After a compaction or a broken watch it resumes and signals once, since a
    /// full pass from the current state is all a missed event needs.
    /// </summary>
    private async Task WatchAsync(string? kind, long fromRevision, Func<StoreEvent, bool> relevant, SemaphoreSlim signal, string what, CancellationToken ct)
    {
        while (true)
        {
            try
            {
                await foreach (var e in store.WatchAsync(kind, fromRevision, ct).ConfigureAwait(false))
                {
                    fromRevision = e.Revision;
                    if (relevant(e))
                    {
                        signal.Release();
                    }
                }
            }
            catch (StoreCompactedException)
            {
                fromRevision = await store.GetRevisionAsync(ct).ConfigureAwait(false);
                signal.Release();
            }
            catch (Exception e) when (e is IOException or InvalidOperationException && !ct.IsCancellationRequested)
            {
                Log($"{what} watch broke, restarting: {e.Message}");
                await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
                signal.Release();
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="pass"/> once per burst of signals, and every 30 s anyway (which repairs what someone
    /// changed by hand while the store was quiet); a failed pass is retried a second later.
    /// </summary>
    private async Task RunOnSignalAsync(SemaphoreSlim signal, Func<CancellationToken, Task> pass, string what, CancellationToken ct)
    {
        while (true)
        {
            await signal.WaitAsync(TimeSpan.FromSeconds(30), ct).ConfigureAwait(false);
            while (signal.CurrentCount > 0)
            {
                await signal.WaitAsync(ct).ConfigureAwait(false);
            }

            try
            {
                await pass(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or FirewallException && !ct.IsCancellationRequested)
            {
                Log($"{what} failed, retrying: {e.Message}");
                await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
                signal.Release();
            }
        }
    }
}
