using System.Collections.Immutable;
using System.Text.Json;
using Loom.Core.Reconcile;
using Loom.Core.Store;

namespace Loom.Core.Watch;

/// <summary>
/// <see cref="IObjectCache{T}"/> over an <see cref="IStore"/>: <see cref="RunAsync"/> lists, then watches from the
/// list's revision; after a broken watch it backs off and resumes from the last revision it applied, and after a
/// compaction it re-lists and emits the difference between its table and the list, so subscribers lose nothing.
/// </summary>
public sealed class ObjectCache<T> : IObjectCache<T>
    where T : class
{
    private readonly IStore _store;
    private readonly ObjectKind<T> _kind;
    private readonly TimeProvider _time;
    private readonly Action<CacheError> _errors;
    private readonly Backoff _backoff;
    private readonly Lock _gate = new();
    private readonly TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Dictionary<string, CacheIndex<T>> _indexes = new(StringComparer.Ordinal);
    private readonly List<Subscription<T>> _subscribers = [];
    private volatile ImmutableDictionary<string, Versioned<T>> _table = ImmutableDictionary.Create<string, Versioned<T>>(StringComparer.Ordinal);
    private readonly List<(long Revision, TaskCompletionSource Done)> _revisionWaiters = [];
    private long _revision;
    private int _started;

    public ObjectCache(IStore store, ObjectKind<T> kind, TimeProvider time, Action<CacheError> errors, Backoff? backoff = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(kind);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(errors);
        _store = store;
        _kind = kind;
        _time = time;
        _errors = errors;
        _backoff = backoff ?? Backoff.Default;
    }

    public string Kind => _kind.Name;

    public bool HasSynced => _synced.Task.IsCompletedSuccessfully;

    public Task Synced => _synced.Task;

    public long Revision => Interlocked.Read(ref _revision);

    public IReadOnlyDictionary<string, Versioned<T>> Snapshot => _table;

    public Versioned<T>? Get(string key) => _table.GetValueOrDefault(key);

    public Task WaitForRevisionAsync(long revision, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (_revision >= revision)
            {
                return Task.CompletedTask;
            }

            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _revisionWaiters.Add((revision, done));
            return done.Task.WaitAsync(cancellationToken);
        }
    }

    public void AddIndex(string name, Func<T, IEnumerable<string>> indexer)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(indexer);
        lock (_gate)
        {
            if (_indexes.ContainsKey(name))
            {
                throw new ArgumentException($"{Kind}: index '{name}' already exists", nameof(name));
            }

            var index = new CacheIndex<T>(name, indexer, ReportIndexError);
            foreach (var item in _table.Values)
            {
                index.Add(item);
            }

            _indexes.Add(name, index);
        }
    }

    public IReadOnlyList<Versioned<T>> ByIndex(string name, string value)
    {
        lock (_gate)
        {
            if (!_indexes.TryGetValue(name, out var index))
            {
                throw new ArgumentException($"{Kind}: no index named '{name}'", nameof(name));
            }

            var table = _table;
            return [.. index.Keys(value).Select(k => table[k])];
        }
    }

    public IDisposable Subscribe(Func<ChangeBatch<T>, CancellationToken, Task> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        var subscription = new Subscription<T>(handler, ex => _errors(new CacheError(Kind, null, $"subscriber failed: {ex.Message}", ex)));
        lock (_gate)
        {
            // Replay under the lock so no change slips between the replay and the first live change.
            subscription.Enqueue(_table.Values.OrderBy(v => v.Key, StringComparer.Ordinal)
                .Select(v => new Change<T>(ChangeType.Added, v.Key, null, v)), _revision);
            _subscribers.Add(subscription);
        }

        return new Unsubscriber(() =>
        {
            lock (_gate)
            {
                _subscribers.Remove(subscription);
            }

            subscription.Dispose();
        });
    }

    /// <summary>
    /// Lists and watches until cancelled; never throws for store failures (they are reported and retried).
    /// Runs once per cache: after cancellation <see cref="Synced"/> stays as it was (or cancelled if it never synced).
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException($"{Kind}: the cache is already running or has run");
        }

        var needList = true;
        var failures = 0;
        try
        {
            while (true)
            {
                try
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    if (needList)
                    {
                        await RelistAsync(cancellationToken).ConfigureAwait(false);
                        needList = false;
                        failures = 0;
                    }

                    await foreach (var e in _store.WatchAsync(Kind, Revision, cancellationToken).ConfigureAwait(false))
                    {
                        Apply(e);
                        failures = 0;
                    }

                    throw new InvalidOperationException("watch ended");
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return;
                }
                catch (StoreCompactedException ex)
                {
                    // History we need is gone: only a fresh list can tell what changed meanwhile.
                    _errors(new CacheError(Kind, null, $"watch from revision {Revision} compacted; re-listing", ex));
                    needList = true;
                    if (failures++ > 0)
                    {
                        // A list that keeps hitting compaction (a store compacting very often) must not spin.
                        await Task.Delay(_backoff.Delay(failures - 1), _time, cancellationToken).ConfigureAwait(false);
                    }
                }
#pragma warning disable CA1031 // any store failure (network, server restart) is retried; the cache must outlive it
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    var delay = _backoff.Delay(++failures);

                    // Start the timer before reporting, so whoever reacts to the report can already move a fake clock past it.
                    var wait = Task.Delay(delay, _time, cancellationToken);
                    _errors(new CacheError(Kind, null, $"{(needList ? "list" : "watch")} failed, retrying in {delay.TotalMilliseconds:0} ms: {ex.Message}", ex));
                    await wait.ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            _synced.TrySetCanceled(cancellationToken);
        }
    }

    private async Task RelistAsync(CancellationToken cancellationToken)
    {
        var list = await _store.ListAsync(Kind, cancellationToken).ConfigureAwait(false);
        var fresh = new Dictionary<string, Versioned<T>>(StringComparer.Ordinal);
        foreach (var item in list.Items)
        {
            if (Decode(item.Key, item.Value, item.ModRevision) is { } v)
            {
                fresh[item.Key] = v;
            }
        }

        lock (_gate)
        {
            var old = _table;
            var changes = new List<Change<T>>();
            foreach (var key in old.Keys.Union(fresh.Keys).Order(StringComparer.Ordinal))
            {
                var before = old.GetValueOrDefault(key);
                var after = fresh.GetValueOrDefault(key);
                if (before?.Revision != after?.Revision)
                {
                    changes.Add(new Change<T>(before is null ? ChangeType.Added : after is null ? ChangeType.Deleted : ChangeType.Updated, key, before, after));
                }
            }

            // The list's revision, even if lower than ours: a store restored from a backup is followed, not waited for.
            Commit(changes, list.Revision);
        }

        _synced.TrySetResult();
    }

    private void Apply(StoreEvent e)
    {
        // A watch resumed from our revision never repeats one, but a store that did must not apply it twice.
        if (e.Revision <= Revision)
        {
            return;
        }

        // A malformed put counts as absent: the old value is no longer what the store holds.
        var after = e.Type == StoreEventType.Put && e.Value is not null ? Decode(e.Key, e.Value, e.Revision) : null;
        lock (_gate)
        {
            var before = _table.GetValueOrDefault(e.Key);
            List<Change<T>> changes = before is null && after is null
                ? []
                : [new Change<T>(before is null ? ChangeType.Added : after is null ? ChangeType.Deleted : ChangeType.Updated, e.Key, before, after)];
            Commit(changes, e.Revision);
        }
    }

    /// <summary>Applies changes to table and indexes and queues them for subscribers; caller holds the lock.</summary>
    private void Commit(List<Change<T>> changes, long revision)
    {
        var table = _table.ToBuilder();
        foreach (var c in changes)
        {
            if (c.Old is not null)
            {
                table.Remove(c.Key);
                foreach (var index in _indexes.Values)
                {
                    index.Remove(c.Old);
                }
            }

            if (c.New is not null)
            {
                table[c.Key] = c.New;
                foreach (var index in _indexes.Values)
                {
                    index.Add(c.New);
                }
            }
        }

        _table = table.ToImmutable();
        Interlocked.Exchange(ref _revision, revision);
        foreach (var w in _revisionWaiters.Where(w => w.Revision <= revision).ToList())
        {
            _revisionWaiters.Remove(w);
            w.Done.TrySetResult();
        }

        if (changes.Count > 0)
        {
            foreach (var s in _subscribers)
            {
                s.Enqueue(changes, revision);
            }
        }
    }

    private Versioned<T>? Decode(string key, string json, long revision)
    {
        try
        {
            var value = JsonSerializer.Deserialize(json, _kind.TypeInfo);
            if (value is null)
            {
                _errors(new CacheError(Kind, key, "value is null"));
                return null;
            }

            var own = _kind.KeyOf(value);
            if (!string.Equals(own, key, StringComparison.Ordinal))
            {
                _errors(new CacheError(Kind, key, $"stored under '{key}' but its key is '{own}'"));
                return null;
            }

            return new Versioned<T>(key, value, revision);
        }
#pragma warning disable CA1031 // one bad document is skipped and reported, whatever the decoder or the key function threw
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _errors(new CacheError(Kind, key, $"cannot decode: {ex.Message}", ex));
            return null;
        }
    }

    private void ReportIndexError(string index, string key, Exception ex) =>
        _errors(new CacheError(Kind, key, $"index '{index}' failed: {ex.Message}", ex));

    private sealed class Unsubscriber(Action dispose) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                dispose();
            }
        }
    }
}
