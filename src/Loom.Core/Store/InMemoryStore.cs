using System.Runtime.CompilerServices;

namespace Loom.Core.Store;

/// <summary>
/// <see cref="IStore"/> in one process's memory with the same semantics as the shared stores: a global revision,
/// a full change history for watches, and leases swept lazily by whichever call notices them first.
/// </summary>
internal sealed class InMemoryStore(TimeProvider time) : IStore
{
    private static readonly TimeSpan LeasePoll = TimeSpan.FromMilliseconds(50);

    private readonly Lock _gate = new();
    private readonly Dictionary<(string Kind, string Key), StoreItem> _items = [];
    private readonly List<StoreEvent> _history = [];
    private readonly Dictionary<long, (TimeSpan Ttl, DateTimeOffset Expires)> _leases = [];
    private long _revision;
    private long _compacted;
    private long _nextLease;
    private TaskCompletionSource _changed = NewSignal();

    public Task<long> GetRevisionAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            Sweep();
            return Task.FromResult(_revision);
        }
    }

    public Task<StoreItem?> GetAsync(string kind, string key, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            Sweep();
            return Task.FromResult(_items.GetValueOrDefault((kind, key)));
        }
    }

    public Task<StoreList> ListAsync(string kind, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            Sweep();
            var items = _items.Values.Where(i => i.Kind == kind).OrderBy(i => i.Key, StringComparer.Ordinal).ToList();
            return Task.FromResult(new StoreList(items, _revision));
        }
    }

    public Task<PutResult> PutAsync(string kind, string key, string value, long? expectedRevision = null, long lease = 0,
        CancellationToken cancellationToken = default)
    {
        StoreKeys.ValidateKind(kind);
        StoreKeys.ValidateKey(key);
        lock (_gate)
        {
            Sweep();
            var current = _items.GetValueOrDefault((kind, key));
            if (expectedRevision is { } expected && (current?.ModRevision ?? 0) != expected)
            {
                return Task.FromResult(new PutResult(false, current?.ModRevision ?? 0));
            }

            if (lease != 0 && !_leases.ContainsKey(lease))
            {
                throw new InvalidOperationException($"lease {lease} not found");
            }

            var rev = ++_revision;
            _items[(kind, key)] = new StoreItem(kind, key, value, current?.CreateRevision ?? rev, rev, lease);
            Publish(new StoreEvent(StoreEventType.Put, kind, key, value, rev));
            return Task.FromResult(new PutResult(true, rev));
        }
    }

    public Task<bool> DeleteAsync(string kind, string key, long? expectedRevision = null, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            Sweep();
            if (!_items.TryGetValue((kind, key), out var current) || (expectedRevision is { } e && current.ModRevision != e))
            {
                return Task.FromResult(false);
            }

            Remove(current);
            return Task.FromResult(true);
        }
    }

    public async IAsyncEnumerable<StoreEvent> WatchAsync(string? kind, long fromRevision,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var next = fromRevision;
        while (true)
        {
            List<StoreEvent> batch;
            Task changed;
            bool leasesPending;
            lock (_gate)
            {
                Sweep();
                if (next < _compacted)
                {
                    throw new StoreCompactedException(next, _compacted);
                }

                // History holds every revision after _compacted in order, so revision r sits at index r - _compacted - 1.
                var start = (int)Math.Max(0, next - _compacted);
                batch = _history.Skip(start).Where(e => kind is null || e.Kind == kind).ToList();
                next = _revision;
                changed = _changed.Task;
                leasesPending = _leases.Count > 0;
            }

            foreach (var e in batch)
            {
                yield return e;
            }

            // With live leases nobody may write when one expires, so poll to sweep them.
            await (leasesPending
                ? Task.WhenAny(changed, Task.Delay(LeasePoll, time, cancellationToken))
                : changed).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public Task<long> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ttl, TimeSpan.Zero);
        lock (_gate)
        {
            var id = ++_nextLease;
            _leases[id] = (ttl, time.GetUtcNow() + ttl);
            return Task.FromResult(id);
        }
    }

    public Task<bool> KeepAliveAsync(long lease, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            Sweep();
            if (!_leases.TryGetValue(lease, out var l))
            {
                return Task.FromResult(false);
            }

            _leases[lease] = (l.Ttl, time.GetUtcNow() + l.Ttl);
            return Task.FromResult(true);
        }
    }

    public Task RevokeLeaseAsync(long lease, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            Expire(lease);
            return Task.CompletedTask;
        }
    }

    public Task CompactAsync(long revision, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var upTo = Math.Min(revision, _revision);
            if (upTo > _compacted)
            {
                _history.RemoveRange(0, (int)(upTo - _compacted));
                _compacted = upTo;
            }

            return Task.CompletedTask;
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private void Sweep()
    {
        var now = time.GetUtcNow();
        foreach (var id in _leases.Where(l => l.Value.Expires <= now).Select(l => l.Key).ToList())
        {
            Expire(id);
        }
    }

    private void Expire(long lease)
    {
        if (!_leases.Remove(lease))
        {
            return;
        }

        foreach (var item in _items.Values.Where(i => i.Lease == lease).OrderBy(i => i.Kind, StringComparer.Ordinal)
                     .ThenBy(i => i.Key, StringComparer.Ordinal).ToList())
        {
            Remove(item);
        }
    }

    private void Remove(StoreItem item)
    {
        _items.Remove((item.Kind, item.Key));
        Publish(new StoreEvent(StoreEventType.Delete, item.Kind, item.Key, null, ++_revision));
    }

    private void Publish(StoreEvent e)
    {
        _history.Add(e);
        var signal = _changed;
        _changed = NewSignal();
        signal.SetResult();
    }
}
