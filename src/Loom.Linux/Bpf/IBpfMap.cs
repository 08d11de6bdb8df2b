namespace Loom.Linux.Bpf;

/// <summary>
/// Typed access to a non-per-CPU map, as <see cref="BpfMap{TKey, TValue}"/> gives it: what map-writing code
/// should depend on, so it can be unit-tested against an in-memory map with the kernel's semantics.
/// </summary>
public interface IBpfMap<TKey, TValue>
    where TKey : unmanaged
    where TValue : unmanaged
{
    bool TryLookup(in TKey key, out TValue value);

    /// <summary>The value at <paramref name="key"/>; KeyNotFoundException if absent.</summary>
    TValue Lookup(in TKey key);

    /// <summary>Writes an entry; BpfException E2BIG when a new key would exceed max_entries, EEXIST/ENOENT per <paramref name="flags"/>.</summary>
    void Update(in TKey key, in TValue value, BpfUpdate flags = BpfUpdate.Any);

    /// <summary>Deletes <paramref name="key"/>; false if it was absent.</summary>
    bool Delete(in TKey key);

    IReadOnlyList<TKey> Keys();

    IReadOnlyList<KeyValuePair<TKey, TValue>> Entries();

    int Count { get; }

    /// <summary>The map's capacity (max_entries).</summary>
    uint MaxEntries { get; }
}
