namespace Loom.Core.Watch;

/// <summary>
/// Pending changes for one subscriber, at most one per key, in order of each key's first pending change.
/// Merging keeps the oldest Old and the newest New, so e.g. Added then Deleted cancels out and Deleted then
/// Added becomes Updated: the subscriber sees the net effect since it last looked.
/// </summary>
internal sealed class ChangeCoalescer<T>
    where T : class
{
    private readonly LinkedList<Change<T>> _order = new();
    private readonly Dictionary<string, LinkedListNode<Change<T>>> _byKey = new(StringComparer.Ordinal);

    public int Count => _order.Count;

    public void Add(Change<T> change)
    {
        if (!_byKey.TryGetValue(change.Key, out var node))
        {
            _byKey[change.Key] = _order.AddLast(change);
            return;
        }

        var old = node.Value.Old;
        var @new = change.New;
        if (old is null && @new is null)
        {
            _order.Remove(node);
            _byKey.Remove(change.Key);
            return;
        }

        var type = old is null ? ChangeType.Added : @new is null ? ChangeType.Deleted : ChangeType.Updated;
        node.Value = new Change<T>(type, change.Key, old, @new);
    }

    public IReadOnlyList<Change<T>> Take()
    {
        var changes = _order.ToList();
        _order.Clear();
        _byKey.Clear();
        return changes;
    }
}
