using Loom.Core.Store;

namespace Loom.Core.Watch;

/// <summary>
/// One secondary index: index value to the keys filed under it. It remembers what each key was filed under,
/// so removal does not depend on the indexer returning the same values twice.
/// </summary>
internal sealed class CacheIndex<T>(string name, Func<T, IEnumerable<string>> indexer, Action<string, string, Exception> onError)
    where T : class
{
    private readonly Dictionary<string, SortedSet<string>> _keysByValue = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string[]> _valuesByKey = new(StringComparer.Ordinal);

    public void Add(Versioned<T> item)
    {
        string[] values;
        try
        {
            values = [.. indexer(item.Value).Distinct(StringComparer.Ordinal)];
        }
#pragma warning disable CA1031 // a throwing indexer leaves the item out of this index only; it is reported
        catch (Exception ex)
#pragma warning restore CA1031
        {
            onError(name, item.Key, ex);
            return;
        }

        _valuesByKey[item.Key] = values;
        foreach (var v in values)
        {
            if (!_keysByValue.TryGetValue(v, out var keys))
            {
                _keysByValue[v] = keys = new SortedSet<string>(StringComparer.Ordinal);
            }

            keys.Add(item.Key);
        }
    }

    public void Remove(Versioned<T> item)
    {
        if (!_valuesByKey.Remove(item.Key, out var values))
        {
            return;
        }

        foreach (var v in values)
        {
            if (_keysByValue.TryGetValue(v, out var keys) && keys.Remove(item.Key) && keys.Count == 0)
            {
                _keysByValue.Remove(v);
            }
        }
    }

    public IEnumerable<string> Keys(string value) => _keysByValue.TryGetValue(value, out var keys) ? keys : [];
}
