using System.Runtime.CompilerServices;
using Loom.Core.Store;

namespace Loom.Agent;

/// <summary>
/// The agent's view of its store: every call gets a deadline (a frozen etcd answers nothing and its calls would wait
/// forever; a locked SQLite file blocks the calling thread for its busy timeout) and its outcome feeds
/// <see cref="StoreHealth"/>, so every controller's calls count. A watch left hanging when a read fails (a watch stream
/// on a frozen server just stops delivering) is reopened from its last revision, the watcher seeing no error.
/// </summary>
internal sealed class GuardedStore(IStore inner, StoreHealth health, TimeSpan deadline) : IStore
{
    public StoreHealth Health => health;

    public TimeSpan Deadline => deadline;

    /// <summary>How long a broken watch waits for the store's return before it is reopened anyway.</summary>
    internal static readonly TimeSpan ReopenAtLatest = TimeSpan.FromSeconds(10);

    /// <summary>The same store and health, with another deadline (CNI ADD must answer within the runtime's patience).</summary>
    public GuardedStore WithDeadline(TimeSpan shorter) => new(inner, health, shorter);

    public Task<long> GetRevisionAsync(CancellationToken cancellationToken = default) =>
        CallAsync("revision", false, c => inner.GetRevisionAsync(c), cancellationToken);

    public Task<StoreItem?> GetAsync(string kind, string key, CancellationToken cancellationToken = default) =>
        CallAsync($"get {kind}/{key}", false, c => inner.GetAsync(kind, key, c), cancellationToken);

    public Task<StoreList> ListAsync(string kind, CancellationToken cancellationToken = default) =>
        CallAsync($"list {kind}", false, c => inner.ListAsync(kind, c), cancellationToken);

    public Task<PutResult> PutAsync(string kind, string key, string value, long? expectedRevision = null, long lease = 0,
        CancellationToken cancellationToken = default) =>
        CallAsync($"put {kind}/{key}", true, c => inner.PutAsync(kind, key, value, expectedRevision, lease, c), cancellationToken);

    /// <summary>
    /// A put whose caller must be able to say it did not happen (CNI ADD, rolled back on failure): if it passes its
    /// deadline and then lands after all (a locked SQLite file is written once the lock is gone), it is deleted again,
    /// unless something wrote the key since.
    /// </summary>
    public Task<PutResult> PutOrUndoAsync(string kind, string key, string value, CancellationToken cancellationToken = default) =>
        CallAsync($"put {kind}/{key}", true, c => inner.PutAsync(kind, key, value, cancellationToken: c), cancellationToken,
            late => late.Succeeded ? Task.Run(() => inner.DeleteAsync(kind, key, late.Revision, CancellationToken.None)) : Task.CompletedTask);

    public Task<bool> DeleteAsync(string kind, string key, long? expectedRevision = null, CancellationToken cancellationToken = default) =>
        CallAsync($"delete {kind}/{key}", true, c => inner.DeleteAsync(kind, key, expectedRevision, c), cancellationToken);

    public Task<long> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken = default) =>
        CallAsync("lease grant", true, c => inner.GrantLeaseAsync(ttl, c), cancellationToken);

    public Task<bool> KeepAliveAsync(long lease, CancellationToken cancellationToken = default) =>
        CallAsync("lease keep-alive", true, c => inner.KeepAliveAsync(lease, c), cancellationToken);

    public Task RevokeLeaseAsync(long lease, CancellationToken cancellationToken = default) =>
        CallAsync("lease revoke", true, async c =>
        {
            await inner.RevokeLeaseAsync(lease, c).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    public Task CompactAsync(long revision, CancellationToken cancellationToken = default) =>
        CallAsync("compact", true, async c =>
        {
            await inner.CompactAsync(revision, c).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    /// <summary>
    /// The inner watch, reopened from the last revision it delivered when a read fails (a watch on a frozen etcd just
    /// goes quiet) once the store answers again: the watcher sees no error, so no backoff delays the changes made
    /// meanwhile. A compaction meanwhile surfaces as usual (the watcher re-lists).
    /// </summary>
    public async IAsyncEnumerable<StoreEvent> WatchAsync(string? kind, long fromRevision,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var from = fromRevision;
        while (true)
        {
            using var watch = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, health.ReadsBroken);
            var events = inner.WatchAsync(kind, from, watch.Token).GetAsyncEnumerator(watch.Token);
            var broken = false;
            await using (events.ConfigureAwait(false))
            {
                while (!broken)
                {
                    bool more;
                    try
                    {
                        // On the thread pool: SQLite's poll blocks its thread while the file is locked.
                        more = await Task.Run(async () => await events.MoveNextAsync().ConfigureAwait(false), CancellationToken.None).ConfigureAwait(false);
                    }
                    catch (Exception e) when (!cancellationToken.IsCancellationRequested && watch.IsCancellationRequested && (e is OperationCanceledException || IsCancelledRpc(e)))
                    {
                        broken = true;
                        continue;
                    }
                    catch (Exception e) when (!cancellationToken.IsCancellationRequested && health.Failed(e, write: false))
                    {
                        throw; // the store said it is down (refused, busy): the watcher's loop retries and reports it
                    }

                    if (!more)
                    {
                        yield break;
                    }

                    health.Succeeded(write: false);
                    from = events.Current.Revision;
                    yield return events.Current;
                }
            }

            // Reopened when the store is back (the probe notices), or after a while anyway.
            if (!health.IsReachable)
            {
                await Task.WhenAny(health.Recovered, Task.Delay(ReopenAtLatest, cancellationToken)).ConfigureAwait(false);
            }

            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    public ValueTask DisposeAsync() => inner.DisposeAsync();

    private async Task<T> CallAsync<T>(string what, bool write, Func<CancellationToken, Task<T>> call, CancellationToken ct, Func<T, Task>? undoLate = null)
    {
        var timer = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timer.CancelAfter(deadline);
        // On the thread pool: SQLite's calls block their thread (busy timeout) before they return a task, and the
        // deadline must not wait for them. The call may outlive its deadline; its end is observed and its timer freed.
        var task = Task.Run(() => call(timer.Token), CancellationToken.None);
        // The call's end and the caller giving up meet here: whichever comes second undoes a call that landed late.
        var met = 0;
        void UndoIfLate()
        {
            if (Interlocked.Increment(ref met) == 2 && undoLate is not null && task.IsCompletedSuccessfully)
            {
                _ = undoLate(task.Result).ContinueWith(u => _ = u.Exception, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }

        _ = task.ContinueWith(t =>
        {
            _ = t.Exception;
            timer.Dispose();
            UndoIfLate();
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        try
        {
            var result = await task.WaitAsync(deadline, ct).ConfigureAwait(false);
            health.Succeeded(write);
            return result;
        }
        catch (Exception e) when (!ct.IsCancellationRequested && (e is TimeoutException || e is OperationCanceledException || IsCancelledRpc(e)))
        {
            var late = new TimeoutException($"the store did not answer ({what}) within {deadline.TotalSeconds:0.#} s");
            health.Failed(late, write);
            UndoIfLate();
            throw late;
        }
        catch (Exception e) when (!ct.IsCancellationRequested && health.Failed(e, write))
        {
            throw;
        }
    }

    // gRPC reports a call cancelled by its token as RpcException(Cancelled), not OperationCanceledException.
    private static bool IsCancelledRpc(Exception e) => e is Grpc.Core.RpcException { StatusCode: Grpc.Core.StatusCode.Cancelled };
}
