using System.Runtime.CompilerServices;
using Loom.Core.Store;
using Loom.Testing;

namespace Loom.Agent.Tests;

/// <summary>
/// A store that stops answering while <see cref="Frozen"/>, as etcd does under SIGSTOP: calls and watch deliveries
/// wait until it thaws or the caller gives up (its token), and nothing is lost: the inner store still takes writes.
/// </summary>
internal sealed class FrozenStore(IStore inner) : DelegatingStore(inner)
{
    private volatile TaskCompletionSource? _frozen;

    public bool Frozen
    {
        get => _frozen is not null;
        set
        {
            if (value)
            {
                _frozen ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
            else
            {
                Interlocked.Exchange(ref _frozen, null)?.TrySetResult();
            }
        }
    }

    /// <summary>A write sent while frozen is applied at the thaw even if its caller gave up, as etcd applies a request it already has.</summary>
    public bool WritesLandLate { get; init; }

    private Task ThawedAsync(CancellationToken ct) => _frozen?.Task.WaitAsync(ct) ?? Task.CompletedTask;

    public override async Task<long> GetRevisionAsync(CancellationToken cancellationToken = default)
    {
        await ThawedAsync(cancellationToken);
        return await Inner.GetRevisionAsync(cancellationToken);
    }

    public override async Task<StoreItem?> GetAsync(string kind, string key, CancellationToken cancellationToken = default)
    {
        await ThawedAsync(cancellationToken);
        return await Inner.GetAsync(kind, key, cancellationToken);
    }

    public override async Task<StoreList> ListAsync(string kind, CancellationToken cancellationToken = default)
    {
        await ThawedAsync(cancellationToken);
        return await Inner.ListAsync(kind, cancellationToken);
    }

    public override async Task<PutResult> PutAsync(string kind, string key, string value, long? expectedRevision = null, long lease = 0,
        CancellationToken cancellationToken = default)
    {
        await ThawedAsync(WritesLandLate ? CancellationToken.None : cancellationToken);
        return await Inner.PutAsync(kind, key, value, expectedRevision, lease, WritesLandLate ? CancellationToken.None : cancellationToken);
    }

    public override async IAsyncEnumerable<StoreEvent> WatchAsync(string? kind, long fromRevision,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var e in Inner.WatchAsync(kind, fromRevision, cancellationToken))
        {
            await ThawedAsync(cancellationToken);
            yield return e;
        }
    }
}
