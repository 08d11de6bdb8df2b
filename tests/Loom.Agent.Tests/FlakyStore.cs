using System.Runtime.CompilerServices;
using Grpc.Core;
using Loom.Core.Store;
using Microsoft.Data.Sqlite;

namespace Loom.Agent.Tests;

/// <summary>
/// A store that is down for its first <paramref name="failures"/> calls, as etcd (RpcException: Unavailable) and a
/// locked SQLite file (SqliteException: SQLITE_BUSY) are, alternately; then it passes every call to the real one.
/// </summary>
internal sealed class FlakyStore(IStore inner, int failures) : IStore
{
    private int _calls;

    public int Failed => Math.Min(Volatile.Read(ref _calls), failures);

    private void MaybeFail()
    {
        var n = Interlocked.Increment(ref _calls);
        if (n <= failures)
        {
            throw n % 2 == 1
                ? new RpcException(new Status(StatusCode.Unavailable, "etcd: connection refused"))
                : new SqliteException("SQLite Error 5: 'database is locked'.", 5);
        }
    }

    public Task<long> GetRevisionAsync(CancellationToken cancellationToken = default)
    {
        MaybeFail();
        return inner.GetRevisionAsync(cancellationToken);
    }

    public Task<StoreItem?> GetAsync(string kind, string key, CancellationToken cancellationToken = default)
    {
        MaybeFail();
        return inner.GetAsync(kind, key, cancellationToken);
    }

    public Task<StoreList> ListAsync(string kind, CancellationToken cancellationToken = default)
    {
        MaybeFail();
        return inner.ListAsync(kind, cancellationToken);
    }

    public Task<PutResult> PutAsync(string kind, string key, string value, long? expectedRevision = null, long lease = 0, CancellationToken cancellationToken = default)
    {
        MaybeFail();
        return inner.PutAsync(kind, key, value, expectedRevision, lease, cancellationToken);
    }

    public Task<bool> DeleteAsync(string kind, string key, long? expectedRevision = null, CancellationToken cancellationToken = default)
    {
        MaybeFail();
        return inner.DeleteAsync(kind, key, expectedRevision, cancellationToken);
    }

    public async IAsyncEnumerable<StoreEvent> WatchAsync(string? kind, long fromRevision, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        MaybeFail();
        await foreach (var e in inner.WatchAsync(kind, fromRevision, cancellationToken))
        {
            yield return e;
        }
    }

    public Task<long> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        MaybeFail();
        return inner.GrantLeaseAsync(ttl, cancellationToken);
    }

    public Task<bool> KeepAliveAsync(long lease, CancellationToken cancellationToken = default)
    {
        MaybeFail();
        return inner.KeepAliveAsync(lease, cancellationToken);
    }

    public Task RevokeLeaseAsync(long lease, CancellationToken cancellationToken = default)
    {
        MaybeFail();
        return inner.RevokeLeaseAsync(lease, cancellationToken);
    }

    public Task CompactAsync(long revision, CancellationToken cancellationToken = default)
    {
        MaybeFail();
        return inner.CompactAsync(revision, cancellationToken);
    }

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
