using Loom.Core.Store;
using Loom.Core.Watch;

namespace Loom.Core.Tests.Watch;

/// <summary>
/// A subscriber that rebuilds the table from change batches and fails on any change that does not follow from
/// what it already saw (an Added for a key it holds, an Old that is not its current value): a lost or duplicated
/// change shows up here.
/// </summary>
internal sealed class Mirror<T>
    where T : class
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Versioned<T>> _table = new(StringComparer.Ordinal);
    private readonly List<ChangeBatch<T>> _batches = [];
    private readonly List<(long Revision, TaskCompletionSource Done)> _waiters = [];
    private long _revision;
    private string? _fault;

    public IReadOnlyList<ChangeBatch<T>> Batches
    {
        get
        {
            lock (_gate)
            {
                return [.. _batches];
            }
        }
    }

    public IReadOnlyList<Change<T>> Changes => [.. Batches.SelectMany(b => b.Changes)];

    public Dictionary<string, Versioned<T>> Table
    {
        get
        {
            lock (_gate)
            {
                return new Dictionary<string, Versioned<T>>(_table, StringComparer.Ordinal);
            }
        }
    }

    public Task Handle(ChangeBatch<T> batch, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _batches.Add(batch);
            foreach (var c in batch.Changes)
            {
                var current = _table.GetValueOrDefault(c.Key);
                if (!Equals(current, c.Old))
                {
                    _fault ??= $"{c.Type} {c.Key}: old {c.Old?.Revision} but mirror holds {current?.Revision}";
                }

                if (c.New is null)
                {
                    _table.Remove(c.Key);
                }
                else
                {
                    _table[c.Key] = c.New;
                }
            }

            _revision = batch.Revision;
            foreach (var w in _waiters.Where(w => w.Revision <= _revision).ToList())
            {
                _waiters.Remove(w);
                w.Done.TrySetResult();
            }
        }

        return Task.CompletedTask;
    }

    public Task WaitForRevisionAsync(long revision)
    {
        lock (_gate)
        {
            if (_revision >= revision)
            {
                return Task.CompletedTask;
            }

            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((revision, done));
            return done.Task.WaitAsync(TimeSpan.FromSeconds(10));
        }
    }

    public void AssertConsistent()
    {
        lock (_gate)
        {
            Assert.Null(_fault);
        }
    }
}
