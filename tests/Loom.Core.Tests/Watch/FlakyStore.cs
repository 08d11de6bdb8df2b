using System.Runtime.CompilerServices;
using Loom.Core.Store;

namespace Loom.Core.Tests.Watch;

/// <summary>A store whose watches the test can break (as a lost etcd connection would) and count.</summary>
internal sealed class FlakyStore(IStore inner) : IStore
{
    private CancellationTokenSource _breaker = new();
    private int _watches;

    /// <summary>Every watch call fails at once while set.</summary>
    public bool FailWatches { get; set; }

    public int Watches => Volatile.Read(ref _watches);

    public IStore Inner => inner;

    /// <summary>Makes every watch running now throw an IOException.</summary>
    public void BreakWatches() => Interlocked.Exchange(ref _breaker, new CancellationTokenSource()).Cancel();

    public async IAsyncEnumerable<StoreEvent> WatchAsync(string? kind, long fromRevision, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var breaker = Volatile.Read(ref _breaker).Token;
        Interlocked.Increment(ref _watches);
        if (FailWatches)
        {
            throw new IOException("store unavailable");
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, breaker);
        var events = inner.WatchAsync(kind, fromRevision, linked.Token).GetAsyncEnumerator(linked.Token);
        try
        {
            while (true)
            {
                bool more;
                try
                {
                    more = await events.MoveNextAsync();
                }
                catch (OperationCanceledException) when (breaker.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    throw new IOException("watch broken");
                }

                if (!more)
                {
                    yield break;
                }

                yield return events.Current;
            }
        }
        finally
        {
            await events.DisposeAsync();
        }
    }

    public Task<long> GetRevisionAsync(CancellationToken cancellationToken = default) => inner.GetRevisionAsync(cancellationToken);

    public Task<StoreItem?> GetAsync(string kind, string key, CancellationToken cancellationToken = default) => inner.GetAsync(kind, key, cancellationToken);

    public Task<StoreList> ListAsync(string kind, CancellationToken cancellationToken = default) => inner.ListAsync(kind, cancellationToken);

    public Task<PutResult> PutAsync(string kind, string key, string value, long? expectedRevision = null, long lease = 0,
        CancellationToken cancellationToken = default) => inner.PutAsync(kind, key, value, expectedRevision, lease, cancellationToken);

    public Task<bool> DeleteAsync(string kind, string key, long? expectedRevision = null, CancellationToken cancellationToken = default) =>
        inner.DeleteAsync(kind, key, expectedRevision, cancellationToken);

    public Task<long> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken = default) => inner.GrantLeaseAsync(ttl, cancellationToken);

    public Task<bool> KeepAliveAsync(long lease, CancellationToken cancellationToken = default) => inner.KeepAliveAsync(lease, cancellationToken);

    public Task RevokeLeaseAsync(long lease, CancellationToken cancellationToken = default) => inner.RevokeLeaseAsync(lease, cancellationToken);

    public Task CompactAsync(long revision, CancellationToken cancellationToken = default) => inner.CompactAsync(revision, cancellationToken);

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
