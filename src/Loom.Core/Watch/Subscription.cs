namespace Loom.Core.Watch;

/// <summary>
/// One subscriber's queue and pump: changes pile up (coalesced) while its handler runs, and the next call gets
/// them as one batch. At most one handler call runs at a time, so a slow controller never sees reordered changes.
/// </summary>
internal sealed class Subscription<T>(Func<ChangeBatch<T>, CancellationToken, Task> handler, Action<Exception> onError) : IDisposable
    where T : class
{
    private readonly Lock _gate = new();
    private readonly ChangeCoalescer<T> _pending = new();
    private readonly CancellationTokenSource _cts = new();
    private long _revision;
    private long _since;
    private bool _running;
    private bool _disposed;

    public void Enqueue(IEnumerable<Change<T>> changes, long revision)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            if (_pending.Count == 0)
            {
                _since = System.Diagnostics.Stopwatch.GetTimestamp();
            }

            foreach (var c in changes)
            {
                _pending.Add(c);
            }

            _revision = revision;
            if (_running || _pending.Count == 0)
            {
                return;
            }

            _running = true;
        }

        _ = Task.Run(PumpAsync);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _pending.Take();
        }

        _cts.Cancel();
    }

    private async Task PumpAsync()
    {
        while (true)
        {
            ChangeBatch<T> batch;
            lock (_gate)
            {
                if (_disposed || _pending.Count == 0)
                {
                    _running = false;
                    return;
                }

                batch = new ChangeBatch<T>(_pending.Take(), _revision, _since);
            }

            try
            {
                await handler(batch, _cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_cts.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // a failing controller must not stop delivery to itself or others; it is reported
            catch (Exception ex)
#pragma warning restore CA1031
            {
                onError(ex);
            }
        }
    }
}
