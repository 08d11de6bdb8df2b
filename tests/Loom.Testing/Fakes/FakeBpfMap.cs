using System.Runtime.InteropServices;
using Loom.Linux.Bpf;

namespace Loom.Testing.Fakes;

/// <summary>
/// An in-memory hash or array map with the kernel's answers: a new key beyond max_entries fails with E2BIG
/// (hash; an LPM trie would say ENOSPC), NoExist/Exist flags fail with EEXIST/ENOENT, array maps hold every
/// index from the start and cannot delete (EINVAL). <see cref="Dump"/> prints it sorted, for golden tests.
/// </summary>
public sealed class FakeBpfMap<TKey, TValue> : IBpfMap<TKey, TValue>
    where TKey : unmanaged
    where TValue : unmanaged
{
    private readonly Lock _gate = new();
    private readonly Dictionary<TKey, TValue> _entries = [];
    private readonly Func<TKey, string> _formatKey;
    private readonly Func<TValue, string> _formatValue;

    /// <param name="formatKey">How <see cref="Dump"/> prints a key; default: its bytes in hex.</param>
    /// <param name="formatValue">How <see cref="Dump"/> prints a value; default: its bytes in hex.</param>
    public FakeBpfMap(string name, uint maxEntries, BpfMapType type = BpfMapType.Hash,
        Func<TKey, string>? formatKey = null, Func<TValue, string>? formatValue = null)
    {
        if (type is not (BpfMapType.Hash or BpfMapType.Array))
        {
            throw new ArgumentException($"FakeBpfMap models hash and array maps, not {type}", nameof(type));
        }

        ArgumentOutOfRangeException.ThrowIfZero(maxEntries);
        if (type == BpfMapType.Array && Marshal.SizeOf<TKey>() != sizeof(uint))
        {
            throw new ArgumentException("array map keys are u32 indexes", nameof(type));
        }

        Name = name;
        MaxEntries = maxEntries;
        Type = type;
        _formatKey = formatKey ?? (k => Hex(k));
        _formatValue = formatValue ?? (v => Hex(v));
    }

    public string Name { get; }

    public uint MaxEntries { get; }

    public BpfMapType Type { get; }

    /// <summary>Writes (updates and deletes) so far, to assert that a reconciler touched only what changed.</summary>
    public int Writes { get; private set; }

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return Type == BpfMapType.Array ? (int)MaxEntries : _entries.Count;
            }
        }
    }

    public bool TryLookup(in TKey key, out TValue value)
    {
        lock (_gate)
        {
            // Arrays read unset slots as zeroes (the kernel preallocates them); past the end there is nothing (ENOENT).
            return _entries.TryGetValue(key, out value) || (Type == BpfMapType.Array && Index(key) < MaxEntries);
        }
    }

    public TValue Lookup(in TKey key) =>
        TryLookup(key, out var v) ? v : throw new KeyNotFoundException($"key not in map '{Name}'");

    public void Update(in TKey key, in TValue value, BpfUpdate flags = BpfUpdate.Any)
    {
        lock (_gate)
        {
            var exists = _entries.ContainsKey(key);
            if (Type == BpfMapType.Array)
            {
                CheckIndex(key, "bpf_map_update_elem");
                exists = true;
            }

            if (flags == BpfUpdate.NoExist && exists)
            {
                throw new BpfException(Errno.EEXIST, "bpf_map_update_elem", Name);
            }

            if (flags == BpfUpdate.Exist && !exists)
            {
                throw new BpfException(Errno.ENOENT, "bpf_map_update_elem", Name);
            }

            if (!exists && _entries.Count >= MaxEntries)
            {
                throw new BpfException(Errno.E2BIG, "bpf_map_update_elem", Name);
            }

            _entries[key] = value;
            Writes++;
        }
    }

    public bool Delete(in TKey key)
    {
        lock (_gate)
        {
            if (Type == BpfMapType.Array)
            {
                throw new BpfException(Errno.EINVAL, "bpf_map_delete_elem", Name);
            }

            Writes++;
            return _entries.Remove(key);
        }
    }

    public IReadOnlyList<TKey> Keys() => [.. Entries().Select(e => e.Key)];

    public IReadOnlyList<KeyValuePair<TKey, TValue>> Entries()
    {
        lock (_gate)
        {
            return Type == BpfMapType.Array
                ? [.. Enumerable.Range(0, (int)MaxEntries).Select(i => Slot((uint)i))]
                : [.. _entries];
        }
    }

    /// <summary>One line per entry, "key => value", sorted; arrays list only slots written so far.</summary>
    public string Dump()
    {
        lock (_gate)
        {
            var lines = _entries.Select(e => $"{_formatKey(e.Key)} => {_formatValue(e.Value)}").Order(StringComparer.Ordinal);
            return string.Concat(lines.Select(l => l + "\n"));
        }
    }

    private KeyValuePair<TKey, TValue> Slot(uint index)
    {
        var key = MemoryMarshal.Read<TKey>(BitConverter.GetBytes(index));
        return new(key, _entries.GetValueOrDefault(key));
    }

    private void CheckIndex(TKey key, string operation)
    {
        if (Index(key) >= MaxEntries)
        {
            throw new BpfException(Errno.E2BIG, operation, Name);
        }
    }

    private static uint Index(TKey key) => MemoryMarshal.Read<uint>(MemoryMarshal.AsBytes(new ReadOnlySpan<TKey>(in key)));

    private static string Hex<T>(T value)
        where T : unmanaged => Convert.ToHexStringLower(MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value)));
}
