using Loom.Core.Store;

namespace Loom.Core.Tests.Migration;

/// <summary>A store whose writes fail from the <see cref="CrashAtWrite"/>th on, as if the command's process died there.</summary>
internal sealed class CrashingStore(IStore inner) : IStore
{
    public int CrashAtWrite { get; set; } = int.MaxValue;

    public int Writes { get; private set; }

    public Task<long> GetRevisionAsync(CancellationToken cancellationToken = default) => inner.GetRevisionAsync(cancellationToken);

    public Task<StoreItem?> GetAsync(string kind, string key, CancellationToken cancellationToken = default) => inner.GetAsync(kind, key, cancellationToken);

    public Task<StoreList> ListAsync(string kind, CancellationToken cancellationToken = default) => inner.ListAsync(kind, cancellationToken);

    public Task<PutResult> PutAsync(string kind, string key, string value, long? expectedRevision = null, long lease = 0, CancellationToken cancellationToken = default)
    {
        Write();
        return inner.PutAsync(kind, key, value, expectedRevision, lease, cancellationToken);
    }

    public Task<bool> DeleteAsync(string kind, string key, long? expectedRevision = null, CancellationToken cancellationToken = default)
    {
        Write();
        return inner.DeleteAsync(kind, key, expectedRevision, cancellationToken);
    }

    public IAsyncEnumerable<StoreEvent> WatchAsync(string? kind, long fromRevision, CancellationToken cancellationToken = default) =>
        inner.WatchAsync(kind, fromRevision, cancellationToken);

    public Task<long> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken = default) => inner.GrantLeaseAsync(ttl, cancellationToken);

    public Task<bool> KeepAliveAsync(long lease, CancellationToken cancellationToken = default) => inner.KeepAliveAsync(lease, cancellationToken);

    public Task RevokeLeaseAsync(long lease, CancellationToken cancellationToken = default) => inner.RevokeLeaseAsync(lease, cancellationToken);

    public Task CompactAsync(long revision, CancellationToken cancellationToken = default) => inner.CompactAsync(revision, cancellationToken);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private void Write()
    {
        if (++Writes >= CrashAtWrite)
        {
            throw new IOException($"crashed at write {Writes}");
        }
    }
}
