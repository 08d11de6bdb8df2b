using System.Runtime.CompilerServices;
using Loom.Core.Store;
using Loom.Testing;

namespace Loom.Core.Tests.Watch;

/// <summary>A store whose watches the test can break (as a lost etcd connection would) and count.</summary>
internal sealed class FlakyStore(IStore inner) : DelegatingStore(inner)
{
    private CancellationTokenSource _breaker = new();
    private int _watches;

    /// <summary>Every watch call fails at once while set.</summary>
    public bool FailWatches { get; set; }

    public int Watches => Volatile.Read(ref _watches);

    /// <summary>Makes every watch running now throw an IOException.</summary>
    public void BreakWatches() => Interlocked.Exchange(ref _breaker, new CancellationTokenSource()).Cancel();

    public override async IAsyncEnumerable<StoreEvent> WatchAsync(string? kind, long fromRevision, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var breaker = Volatile.Read(ref _breaker).Token;
        Interlocked.Increment(ref _watches);
        if (FailWatches)
        {
            throw new IOException("store unavailable");
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, breaker);
        var events = Inner.WatchAsync(kind, fromRevision, linked.Token).GetAsyncEnumerator(linked.Token);
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
}
