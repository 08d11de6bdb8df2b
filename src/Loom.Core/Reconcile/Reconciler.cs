namespace Loom.Core.Reconcile;

/// <summary>
/// <see cref="IReconciler{TKey, TValue}"/> with one worker (<see cref="RunAsync"/>): it writes changed rows in
/// change order (per row, or as one batch if the operations implement <see cref="IBatchReconcileOperations{TKey, TValue}"/>),
/// retries failed rows with exponential backoff, and every <see cref="ReconcilerOptions.FullPassInterval"/> hands the
/// whole desired table to Prune to repair drift. All timing goes through the <see cref="TimeProvider"/>.
/// </summary>
public sealed class Reconciler<TKey, TValue> : IReconciler<TKey, TValue>
    where TKey : notnull
{
    private readonly IReconcileOperations<TKey, TValue> _ops;
    private readonly TimeProvider _time;
    private readonly ReconcilerOptions _options;
    private readonly IEqualityComparer<TValue> _comparer;
    private readonly Lock _gate = new();
    private readonly Dictionary<TKey, ReconcileRow<TValue>> _rows;

    // The rows in state Pending and in state Error: a round and Stats cost what is pending, not the whole table.
    private readonly Dictionary<TKey, ReconcileRow<TValue>> _pending;
    private readonly Dictionary<TKey, ReconcileRow<TValue>> _errors;
    private TaskCompletionSource _signal = NewSignal();
    private TaskCompletionSource _idle = NewSignal();
    private TaskCompletionSource<int>? _fullPassWaiter;
    private DateTimeOffset _nextFullPass = DateTimeOffset.MaxValue;
    private int _fullPassFailuresInRow;
    private bool _running;
    private long _seq;
    private long _updates;
    private long _deletes;
    private long _failures;
    private long _fullPasses;
    private long _fullPassFailures;
    private long _driftRepaired;
    private int _lastDrift;
    private string? _lastFullPassError;

    public Reconciler(IReconcileOperations<TKey, TValue> operations, TimeProvider time, ReconcilerOptions? options = null,
        IEqualityComparer<TKey>? keyComparer = null, IEqualityComparer<TValue>? valueComparer = null)
    {
        ArgumentNullException.ThrowIfNull(operations);
        ArgumentNullException.ThrowIfNull(time);
        _ops = operations;
        _time = time;
        _options = options ?? new ReconcilerOptions();
        _rows = new Dictionary<TKey, ReconcileRow<TValue>>(keyComparer);
        _pending = new Dictionary<TKey, ReconcileRow<TValue>>(keyComparer);
        _errors = new Dictionary<TKey, ReconcileRow<TValue>>(keyComparer);
        _comparer = valueComparer ?? EqualityComparer<TValue>.Default;
    }

    public string Name => _options.Name;

    public void Upsert(TKey key, TValue value)
    {
        lock (_gate)
        {
            if (_rows.TryGetValue(key, out var row) && !row.Deleting && _comparer.Equals(row.Value!, value))
            {
                return;
            }

            row ??= _rows[key] = new ReconcileRow<TValue>();
            row.Value = value;
            row.Deleting = false;
            MarkPending(key, row);
        }
    }

    public void Delete(TKey key)
    {
        lock (_gate)
        {
            if (!_rows.TryGetValue(key, out var row) || row.Deleting)
            {
                return;
            }

            row.Deleting = true;
            MarkPending(key, row);
        }
    }

    public IReadOnlyDictionary<TKey, TValue> Desired
    {
        get
        {
            lock (_gate)
            {
                return DesiredLocked();
            }
        }
    }

    public IReadOnlyList<RowStatus<TKey, TValue>> Status()
    {
        lock (_gate)
        {
            return [.. _rows.OrderBy(r => r.Value.Seq)
                .Select(r => new RowStatus<TKey, TValue>(r.Key, r.Value.Value, r.Value.Deleting, r.Value.State, r.Value.Error, r.Value.Attempts, r.Value.RetryAt))];
        }
    }

    public ReconcilerStats Stats
    {
        get
        {
            lock (_gate)
            {
                return new ReconcilerStats(_updates, _deletes, _failures, _fullPasses, _fullPassFailures, _driftRepaired, _lastDrift,
                    _pending.Count, _errors.Count, _rows.Count - _pending.Count - _errors.Count, _lastFullPassError);
            }
        }
    }

    public Task WaitIdleAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (!HasWork(_time.GetUtcNow()))
            {
                return Task.CompletedTask;
            }

            if (_idle.Task.IsCompleted)
            {
                _idle = NewSignal();
            }

            // The clock may have moved past a retry while the worker sleeps on an older timer: let it look again.
            _signal.TrySetResult();
            return _idle.Task.WaitAsync(cancellationToken);
        }
    }

    public Task<int> FullPassAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            _fullPassWaiter ??= new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            _signal.TrySetResult();
            return _fullPassWaiter.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Runs the worker until cancelled. Only one may run at a time.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_running)
            {
                throw new InvalidOperationException($"{Name}: already running");
            }

            _running = true;
            _nextFullPass = After(_time.GetUtcNow(), _options.FullPassInterval);
        }

        try
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                List<(TKey Key, ReconcileRow<TValue> Row, long Version)> work;
                bool fullPass;
                Task signal;
                TimeSpan sleep;
                lock (_gate)
                {
                    var now = _time.GetUtcNow();
                    work = [.. _pending.Concat(_errors.Where(r => r.Value.RunnableAt(now))).OrderBy(r => r.Value.Seq)
                        .Select(r => (r.Key, r.Value, r.Value.Version))];

                    // Pending rows first, so a full pass measures drift rather than changes not yet written.
                    fullPass = work.Count == 0 && (_fullPassWaiter is not null || now >= _nextFullPass);
                    if (_signal.Task.IsCompleted)
                    {
                        _signal = NewSignal();
                    }

                    signal = _signal.Task;
                    var wake = _nextFullPass;
                    foreach (var r in _errors.Values)
                    {
                        wake = r.RetryAt!.Value < wake ? r.RetryAt.Value : wake;
                    }

                    sleep = wake - now;
                    if (work.Count == 0 && !fullPass)
                    {
                        _idle.TrySetResult();
                    }
                }

                if (work.Count > 0)
                {
                    await WriteAsync(work, cancellationToken).ConfigureAwait(false);
                }
                else if (fullPass)
                {
                    await RunFullPassAsync(cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await SleepAsync(signal, sleep, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            lock (_gate)
            {
                _running = false;
            }
        }
    }

    private async Task WriteAsync(List<(TKey Key, ReconcileRow<TValue> Row, long Version)> work, CancellationToken cancellationToken)
    {
        if (_ops is IBatchReconcileOperations<TKey, TValue> batch)
        {
            var changes = work.Select(w => new RowChange<TKey, TValue>(w.Key, w.Row.Deleting ? default : w.Row.Value, w.Row.Deleting)).ToList();
            var error = await TryAsync(() => batch.ApplyBatchAsync(changes, cancellationToken), cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                foreach (var w in work)
                {
                    Settle(w.Key, w.Row, w.Version, error);
                }
            }

            return;
        }

        foreach (var w in work)
        {
            TValue? value;
            bool deleting;
            lock (_gate)
            {
                // A row changed since it was picked is picked again on the next round with its new value.
                if (w.Row.Version != w.Version)
                {
                    continue;
                }

                value = w.Row.Value;
                deleting = w.Row.Deleting;
            }

            var error = await TryAsync(() => deleting ? _ops.DeleteAsync(w.Key, cancellationToken) : _ops.UpdateAsync(w.Key, value!, cancellationToken),
                cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                Settle(w.Key, w.Row, w.Version, error);
            }
        }
    }

    private void Settle(TKey key, ReconcileRow<TValue> row, long version, Exception? error)
    {
        if (row.Version != version)
        {
            return;
        }

        if (error is null)
        {
            if (row.Deleting)
            {
                _deletes++;
                _rows.Remove(key);
                _pending.Remove(key);
                _errors.Remove(key);
            }
            else
            {
                _updates++;
                Move(key, row, RowState.Done);
                row.Error = null;
                row.Attempts = 0;
                row.RetryAt = null;
            }

            return;
        }

        _failures++;
        Move(key, row, RowState.Error);
        row.Error = error.Message;
        row.Attempts++;
        row.RetryAt = _time.GetUtcNow() + _options.RetryBackoff.Delay(row.Attempts);
    }

    private async Task RunFullPassAsync(CancellationToken cancellationToken)
    {
        Dictionary<TKey, TValue> desired;
        List<(TKey Key, ReconcileRow<TValue> Row, long Version)> rows;
        TaskCompletionSource<int>? waiter;
        lock (_gate)
        {
            desired = DesiredLocked();
            rows = [.. _rows.Select(r => (r.Key, r.Value, r.Value.Version))];
            waiter = _fullPassWaiter;
            _fullPassWaiter = null;
        }

        var drift = 0;
        var error = await TryAsync(async () => drift = await _ops.PruneAsync(desired, cancellationToken).ConfigureAwait(false), cancellationToken)
            .ConfigureAwait(false);
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            _fullPasses++;
            if (error is null)
            {
                _fullPassFailuresInRow = 0;
                _lastDrift = drift;
                _driftRepaired += drift;
                _lastFullPassError = null;

                // The target now matches what the pass was given, errors and unwritten deletes included.
                foreach (var r in rows)
                {
                    Settle(r.Key, r.Row, r.Version, null);
                }

                _nextFullPass = After(now, _options.FullPassInterval);
                waiter?.TrySetResult(drift);
            }
            else
            {
                _fullPassFailures++;
                _lastFullPassError = error.Message;
                var retry = _options.RetryBackoff.Delay(++_fullPassFailuresInRow);
                _nextFullPass = After(now, _options.FullPassInterval < retry ? _options.FullPassInterval : retry);
                waiter?.TrySetException(error);
            }
        }
    }

    private async Task SleepAsync(Task signal, TimeSpan sleep, CancellationToken cancellationToken)
    {
        if (sleep <= TimeSpan.Zero)
        {
            return;
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var delay = sleep >= TimeSpan.FromDays(1) ? Task.Delay(Timeout.Infinite, cts.Token) : Task.Delay(sleep, _time, cts.Token);
        await Task.WhenAny(signal, delay).ConfigureAwait(false);
        await cts.CancelAsync().ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
    }

    private static async Task<Exception?> TryAsync(Func<Task> operation, CancellationToken cancellationToken)
    {
        try
        {
            await operation().ConfigureAwait(false);
            return null;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
#pragma warning disable CA1031 // whatever the target threw is the row's error, retried with backoff
        catch (Exception ex)
#pragma warning restore CA1031
        {
            return ex;
        }
    }

    private void MarkPending(TKey key, ReconcileRow<TValue> row)
    {
        Move(key, row, RowState.Pending);
        row.Attempts = 0;
        row.RetryAt = null;
        row.Version++;
        row.Seq = ++_seq;
        if (_idle.Task.IsCompleted)
        {
            _idle = NewSignal();
        }

        _signal.TrySetResult();
    }

    private void Move(TKey key, ReconcileRow<TValue> row, RowState state)
    {
        row.State = state;
        if (state == RowState.Pending)
        {
            _pending[key] = row;
        }
        else
        {
            _pending.Remove(key);
        }

        if (state == RowState.Error)
        {
            _errors[key] = row;
        }
        else
        {
            _errors.Remove(key);
        }
    }

    private bool HasWork(DateTimeOffset now) =>
        _fullPassWaiter is not null || now >= _nextFullPass || _pending.Count > 0 || _errors.Values.Any(r => r.RunnableAt(now));

    private Dictionary<TKey, TValue> DesiredLocked() =>
        _rows.Where(r => !r.Value.Deleting).ToDictionary(r => r.Key, r => r.Value.Value!, _rows.Comparer);

    private static DateTimeOffset After(DateTimeOffset now, TimeSpan interval) =>
        interval == Timeout.InfiniteTimeSpan || interval >= DateTimeOffset.MaxValue - now ? DateTimeOffset.MaxValue : now + interval;

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
