using Loom.Core.Reconcile;

namespace Loom.Core.Tests.Reconcile;

/// <summary>
/// A target that is a plain table, like a BPF map: it logs every operation, can be told to fail a key a number of
/// times, to block on a key, and can be changed behind the reconciler's back to simulate drift.
/// </summary>
internal class TableTarget : IReconcileOperations<string, int>
{
    private readonly Lock _gate = new();

    public SortedDictionary<string, int> Table { get; } = new(StringComparer.Ordinal);

    public List<string> Log { get; } = [];

    /// <summary>Key to how many more writes of it fail (int.MaxValue = always).</summary>
    public Dictionary<string, int> Failures { get; } = new(StringComparer.Ordinal);

    /// <summary>A write of this key signals Entered, then waits for Release.</summary>
    public (string Key, TaskCompletionSource Entered, Task Release)? Block { get; set; }

    public Exception? PruneFailure { get; set; }

    public string Text
    {
        get
        {
            lock (_gate)
            {
                return string.Join(" ", Table.Select(p => $"{p.Key}={p.Value}"));
            }
        }
    }

    public async Task UpdateAsync(string key, int value, CancellationToken cancellationToken)
    {
        await BlockAsync(key);
        lock (_gate)
        {
            Log.Add($"update {key}={value}");
            Fail(key);
            Table[key] = value;
        }
    }

    public async Task DeleteAsync(string key, CancellationToken cancellationToken)
    {
        await BlockAsync(key);
        lock (_gate)
        {
            Log.Add($"delete {key}");
            Fail(key);
            Table.Remove(key);
        }
    }

    public Task<int> PruneAsync(IReadOnlyDictionary<string, int> desired, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            Log.Add("prune");
            if (PruneFailure is not null)
            {
                throw PruneFailure;
            }

            var repaired = 0;
            foreach (var stray in Table.Keys.Where(k => !desired.ContainsKey(k)).ToList())
            {
                Table.Remove(stray);
                repaired++;
            }

            foreach (var (k, v) in desired)
            {
                if (!Table.TryGetValue(k, out var have) || have != v)
                {
                    Table[k] = v;
                    repaired++;
                }
            }

            return Task.FromResult(repaired);
        }
    }

    public void Tamper(Action<SortedDictionary<string, int>> change)
    {
        lock (_gate)
        {
            change(Table);
        }
    }

    protected void Fail(string key)
    {
        if (Failures.TryGetValue(key, out var left) && left > 0)
        {
            Failures[key] = left == int.MaxValue ? left : left - 1;
            throw new IOException($"EBUSY writing {key}");
        }
    }

    protected Lock Gate => _gate;

    private async Task BlockAsync(string key)
    {
        if (Block is { } b && b.Key == key)
        {
            Block = null;
            b.Entered.SetResult();
            await b.Release;
        }
    }
}

/// <summary>The same table applied in transactions, as iptables-restore applies a ruleset.</summary>
internal sealed class BatchTableTarget : TableTarget, IBatchReconcileOperations<string, int>
{
    public Task ApplyBatchAsync(IReadOnlyList<RowChange<string, int>> changes, CancellationToken cancellationToken)
    {
        lock (Gate)
        {
            Log.Add("batch " + string.Join(",", changes.Select(c => c.IsDelete ? $"-{c.Key}" : $"{c.Key}={c.Value}")));
            foreach (var c in changes)
            {
                Fail(c.Key);
            }

            foreach (var c in changes)
            {
                if (c.IsDelete)
                {
                    Table.Remove(c.Key);
                }
                else
                {
                    Table[c.Key] = c.Value;
                }
            }
        }

        return Task.CompletedTask;
    }
}
