using System.Runtime.CompilerServices;
using Loom.Core.Store;

namespace Loom.Testing;

/// <summary>
/// A store that passes every call to <see cref="Inner"/>, for test doubles that break, count or fail some calls:
/// override <see cref="OnCall"/> to act before every call, or a single method to change just that one.
/// </summary>
public abstract class DelegatingStore(IStore inner) : IStore
{
    public IStore Inner => inner;

    /// <summary>Runs before every call (for a watch: when it is first enumerated).</summary>
    protected virtual void OnCall()
    {
    }

    public virtual Task<long> GetRevisionAsync(CancellationToken cancellationToken = default)
    {
        OnCall();
        return inner.GetRevisionAsync(cancellationToken);
    }

    public virtual Task<StoreItem?> GetAsync(string kind, string key, CancellationToken cancellationToken = default)
    {
        OnCall();
        return inner.GetAsync(kind, key, cancellationToken);
    }

    public virtual Task<StoreList> ListAsync(string kind, CancellationToken cancellationToken = default)
    {
        OnCall();
        return inner.ListAsync(kind, cancellationToken);
    }

    public virtual Task<PutResult> PutAsync(string kind, string key, string value, long? expectedRevision = null, long lease = 0,
        CancellationToken cancellationToken = default)
    {
        OnCall();
        return inner.PutAsync(kind, key, value, expectedRevision, lease, cancellationToken);
    }

    public virtual Task<bool> DeleteAsync(string kind, string key, long? expectedRevision = null, CancellationToken cancellationToken = default)
    {
        OnCall();
        return inner.DeleteAsync(kind, key, expectedRevision, cancellationToken);
    }

    public virtual async IAsyncEnumerable<StoreEvent> WatchAsync(string? kind, long fromRevision,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        OnCall();
        await foreach (var e in inner.WatchAsync(kind, fromRevision, cancellationToken))
        {
            yield return e;
        }
    }

    public virtual Task<long> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        OnCall();
        return inner.GrantLeaseAsync(ttl, cancellationToken);
    }

    public virtual Task<bool> KeepAliveAsync(long lease, CancellationToken cancellationToken = default)
    {
        OnCall();
        return inner.KeepAliveAsync(lease, cancellationToken);
    }

    public virtual Task RevokeLeaseAsync(long lease, CancellationToken cancellationToken = default)
    {
        OnCall();
        return inner.RevokeLeaseAsync(lease, cancellationToken);
    }

    public virtual Task CompactAsync(long revision, CancellationToken cancellationToken = default)
    {
        OnCall();
        return inner.CompactAsync(revision, cancellationToken);
    }

    public virtual ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return inner.DisposeAsync();
    }
}
