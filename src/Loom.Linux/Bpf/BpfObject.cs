using Loom.Linux.Interop;

namespace Loom.Linux.Bpf;

/// <summary>
/// A BPF ELF object (clang -target bpf output) opened with libbpf: <see cref="Open"/>, optionally adjust
/// maps, then <see cref="Load"/> (creates the maps, runs CO-RE relocation and the verifier). Disposing closes
/// the object's descriptors; tc filters and cgroup attachments made with its programs stay in the kernel
/// (they hold their own references), as do pinned maps.
/// </summary>
public sealed class BpfObject : IDisposable
{
    private readonly Dictionary<string, BpfMap> _maps = new(StringComparer.Ordinal);
    private readonly Dictionary<string, BpfProgram> _programs = new(StringComparer.Ordinal);
    private readonly List<string> _reused = [];
    private readonly List<string> _replaced = [];
    private readonly List<(string Prefix, string Directory)> _shared = [];
    private readonly List<(nint Map, int OldFd)> _resizing = [];
    private readonly List<string> _resized = [];
    private readonly List<(string Pin, string Parked)> _parked = [];
    private nint _obj;

    private BpfObject(nint obj, string path)
    {
        _obj = obj;
        Path = path;
    }

    public string Path { get; }

    public bool IsLoaded { get; private set; }

    /// <summary>Maps that were taken over from existing pins at <see cref="Load"/> (contents preserved).</summary>
    public IReadOnlyList<string> ReusedMaps => _reused;

    /// <summary>Maps whose existing pin had another shape and was replaced by a new, empty map.</summary>
    public IReadOnlyList<string> ReplacedMaps => _replaced;

    /// <summary>
    /// Of <see cref="ReplacedMaps"/>, those that differed only in capacity: their entries were copied into the new map,
    /// as many as fit (one line each: name, old and new capacity, entries copied and left out).
    /// </summary>
    public IReadOnlyList<string> ResizedMaps => _resized;

    /// <summary>Opens (parses) an object file; nothing is created in the kernel yet.</summary>
    public static unsafe BpfObject Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"BPF object {path} not found (run `make build`, which runs make -C bpf)", path);
        }

        LibBpf.BeginLog();
        var obj = LibBpf.bpf_object__open_file(path, null);
        return obj == 0
            ? throw new BpfException(System.Runtime.InteropServices.Marshal.GetLastPInvokeError(), "bpf_object__open_file", path, LibBpf.TakeLog())
            : new BpfObject(obj, path);
    }

    /// <summary>Open + Load in one step.</summary>
    public static BpfObject Load(string path, string? pinDirectory = null)
    {
        var obj = Open(path);
        try
        {
            obj.Load(pinDirectory);
            return obj;
        }
        catch
        {
            obj.Dispose();
            throw;
        }
    }

    /// <summary>Names of the object's maps, including libbpf's internal ones (.rodata, .bss, ...).</summary>
    public unsafe IReadOnlyList<string> MapNames
    {
        get
        {
            var names = new List<string>();
            for (var m = LibBpf.bpf_object__next_map(Handle, 0); m != 0; m = LibBpf.bpf_object__next_map(Handle, m))
            {
                names.Add(LibBpf.Utf8(LibBpf.bpf_map__name(m)));
            }

            return names;
        }
    }

    public unsafe IReadOnlyList<string> ProgramNames
    {
        get
        {
            var names = new List<string>();
            for (var p = LibBpf.bpf_object__next_program(Handle, 0); p != 0; p = LibBpf.bpf_object__next_program(Handle, p))
            {
                names.Add(LibBpf.Utf8(LibBpf.bpf_program__name(p)));
            }

            return names;
        }
    }

    private nint Handle => _obj != 0 ? _obj : throw new ObjectDisposedException(nameof(BpfObject));

    /// <summary>Changes a map's capacity before <see cref="Load"/>.</summary>
    public void SetMaxEntries(string mapName, uint maxEntries)
    {
        if (IsLoaded)
        {
            throw new InvalidOperationException("SetMaxEntries must be called before Load");
        }

        var rc = LibBpf.bpf_map__set_max_entries(FindMap(mapName), maxEntries);
        if (rc != 0)
        {
            throw BpfException.FromRc(rc, "bpf_map__set_max_entries", mapName);
        }
    }

    /// <summary>
    /// Before <see cref="Load"/>: maps whose name starts with <paramref name="prefix"/> are pinned in
    /// <paramref name="directory"/> instead of the object's own pin directory — maps several objects share (the flow
    /// events' ring). An existing pin there is reused when its type, key, value and flags match, whatever its capacity
    /// (whoever created it chose that); one of another shape fails <see cref="Load"/> (other objects' programs use it, a
    /// replacement would silently split them). Without this call such maps are the object's own (unshared).
    /// </summary>
    public void PinShared(string prefix, string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (IsLoaded)
        {
            throw new InvalidOperationException("PinShared must be called before Load");
        }

        _shared.Add((prefix, directory));
    }

    /// <summary>
    /// Creates the maps and loads the programs (the verifier's log is in the BpfException on failure).
    /// With <paramref name="pinDirectory"/> (on bpffs), every non-internal map is pinned as
    /// <c>pinDirectory/NAME</c>: an existing pin of the same shape (type, key/value size, max entries, flags)
    /// is reused with its contents — so state survives agent restarts — and one of another shape is
    /// replaced (see <see cref="ReusedMaps"/> / <see cref="ReplacedMaps"/>).
    /// </summary>
    public unsafe void Load(string? pinDirectory = null)
    {
        if (IsLoaded)
        {
            throw new InvalidOperationException($"{Path} is already loaded");
        }

        if (pinDirectory is not null)
        {
            Directory.CreateDirectory(pinDirectory);
        }

        foreach (var (_, dir) in _shared)
        {
            Directory.CreateDirectory(dir);
        }

        try
        {
            PrepareAndLoad(pinDirectory);
        }
        catch
        {
            RestoreParked();
            throw;
        }

        DropParked();
    }

    private unsafe void PrepareAndLoad(string? pinDirectory)
    {
        for (var m = LibBpf.bpf_object__next_map(Handle, 0); m != 0; m = LibBpf.bpf_object__next_map(Handle, m))
        {
            if (LibBpf.bpf_map__is_internal(m))
            {
                continue;
            }

            var name = LibBpf.Utf8(LibBpf.bpf_map__name(m));
            var shared = _shared.FindIndex(s => name.StartsWith(s.Prefix, StringComparison.Ordinal));
            if (shared >= 0)
            {
                PreparePin(m, _shared[shared].Directory, adoptCapacity: true);
            }
            else if (pinDirectory is not null)
            {
                PreparePin(m, pinDirectory, adoptCapacity: false);
            }
        }

        LibBpf.BeginLog();
        var rc = LibBpf.bpf_object__load(Handle);
        if (rc != 0)
        {
            CloseResizing();
            throw BpfException.FromRc(rc, "bpf_object__load", Path, withLog: true);
        }

        IsLoaded = true;
        try
        {
            foreach (var (map, oldFd) in _resizing)
            {
                _resized.Add(CopyEntries(map, oldFd));
            }
        }
        finally
        {
            CloseResizing();
        }
    }

    /// <summary>
    /// A failed load (or preparation) puts the replaced maps' old pins back, entries and all: unparked, the old map would
    /// be gone with its last descriptor, and the next start would find nothing to copy.
    /// </summary>
    private void RestoreParked()
    {
        foreach (var (pin, parked) in _parked)
        {
            // Best effort, keeping the load's error: a new map pinned meanwhile (libbpf unpins those itself) gives way.
            _ = Libc.unlink(pin);
            var fd = LibBpf.bpf_obj_get(parked);
            if (fd >= 0 && LibBpf.bpf_obj_pin(fd, pin) == 0)
            {
                _ = Libc.unlink(parked);
            }

            if (fd >= 0)
            {
                Libc.close(fd);
            }
        }

        _parked.Clear();
    }

    private void DropParked()
    {
        foreach (var (_, parked) in _parked)
        {
            BpfFs.Unpin(parked);
        }

        _parked.Clear();
    }

    /// <summary>A map of the loaded object; its descriptor is valid while this object lives.</summary>
    public BpfMap Map(string name)
    {
        EnsureLoaded();
        if (!_maps.TryGetValue(name, out var map))
        {
            var fd = LibBpf.bpf_map__fd(FindMap(name));
            map = fd >= 0 ? new BpfMap(fd, ownsFd: false) : throw new BpfException(-fd, "bpf_map__fd", name);
            _maps[name] = map;
        }

        return map;
    }

    public BpfMap<TKey, TValue> Map<TKey, TValue>(string name)
        where TKey : unmanaged
        where TValue : unmanaged => Map(name).As<TKey, TValue>();

    public BpfPerCpuMap<TKey, TValue> PerCpuMap<TKey, TValue>(string name)
        where TKey : unmanaged
        where TValue : unmanaged => Map(name).AsPerCpu<TKey, TValue>();

    /// <summary>A program of the loaded object (by its C function name).</summary>
    public BpfProgram Program(string name)
    {
        EnsureLoaded();
        if (!_programs.TryGetValue(name, out var prog))
        {
            var p = LibBpf.bpf_object__find_program_by_name(Handle, name);
            if (p == 0)
            {
                throw new KeyNotFoundException($"no program '{name}' in {Path} (has: {string.Join(", ", ProgramNames)})");
            }

            var fd = LibBpf.bpf_program__fd(p);
            prog = fd >= 0 ? new BpfProgram(name, fd, ownsFd: false) : throw new BpfException(-fd, "bpf_program__fd", name);
            _programs[name] = prog;
        }

        return prog;
    }

    public void Dispose()
    {
        CloseResizing();
        if (_obj != 0)
        {
            // Borrowed descriptors die with the object: make the views throw ObjectDisposedException
            // instead of silently using a descriptor number the process may reuse.
            foreach (var m in _maps.Values)
            {
                m.Dispose();
            }

            foreach (var p in _programs.Values)
            {
                p.Dispose();
            }

            LibBpf.bpf_object__close(_obj);
            _obj = 0;
        }
    }

    private void EnsureLoaded()
    {
        if (!IsLoaded)
        {
            throw new InvalidOperationException($"{Path} is not loaded yet");
        }
    }

    private nint FindMap(string name)
    {
        var m = LibBpf.bpf_object__find_map_by_name(Handle, name);
        return m != 0 ? m : throw new KeyNotFoundException($"no map '{name}' in {Path} (has: {string.Join(", ", MapNames)})");
    }

    private static string Shape(nint map) =>
        $"{(BpfMapType)LibBpf.bpf_map__type(map)} key {LibBpf.bpf_map__key_size(map)} value {LibBpf.bpf_map__value_size(map)} " +
        $"max {LibBpf.bpf_map__max_entries(map)} flags 0x{LibBpf.bpf_map__map_flags(map):x}";

    private void CloseResizing()
    {
        foreach (var (_, fd) in _resizing)
        {
            Libc.close(fd);
        }

        _resizing.Clear();
    }

    /// <summary>
    /// Copies a resized map's old entries into its new map (first come, first kept, until the new one is full; an LRU
    /// map evicts instead, so at most its capacity is copied). Programs still attached with the old map write to it
    /// until they are replaced: their entries from that window are lost.
    /// </summary>
    private static unsafe string CopyEntries(nint map, int oldFd)
    {
        var name = LibBpf.Utf8(LibBpf.bpf_map__name(map));
        var newFd = LibBpf.bpf_map__fd(map);
        var info = BpfMap.Info(oldFd);
        var max = LibBpf.bpf_map__max_entries(map);
        var type = (BpfMapType)info.Type;
        var perCpu = type is BpfMapType.PerCpuArray or BpfMapType.PerCpuHash or BpfMapType.LruPerCpuHash;
        var valueSize = perCpu ? ((info.ValueSize + 7) & ~7u) * (uint)BpfFs.PossibleCpus : info.ValueSize;
        var key = new byte[info.KeySize];
        var next = new byte[info.KeySize];
        var value = new byte[valueSize];
        long copied = 0, left = 0;
        fixed (byte* k = key, n = next, v = value)
        {
            for (var first = true; LibBpf.bpf_map_get_next_key(oldFd, first ? null : k, n) == 0; first = false)
            {
                Buffer.MemoryCopy(n, k, key.Length, key.Length);
                if (copied + left > info.MaxEntries + 1024L)
                {
                    break; // the old map keeps changing under the walk; don't loop forever
                }

                if (LibBpf.bpf_map_lookup_elem(oldFd, k, v) != 0)
                {
                    continue; // deleted meanwhile
                }

                if (copied >= max || LibBpf.bpf_map_update_elem(newFd, k, v, 0) != 0)
                {
                    left++; // full (E2BIG), or an array index past the new end
                    continue;
                }

                copied++;
            }
        }

        return string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{name}: {info.MaxEntries} -> {max} entries, {copied} copied, {left} left out");
    }

    private unsafe void PreparePin(nint map, string pinDirectory, bool adoptCapacity)
    {
        var name = LibBpf.Utf8(LibBpf.bpf_map__name(map));
        var path = System.IO.Path.Combine(pinDirectory, name);
        var fd = LibBpf.bpf_obj_get(path);
        if (fd >= 0)
        {
            bool same;
            var resize = false;
            string mismatch;
            try
            {
                var info = BpfMap.Info(fd);
                mismatch = $"{(BpfMapType)info.Type} key {info.KeySize} value {info.ValueSize} max {info.MaxEntries} flags 0x{info.MapFlags:x}";
                same = info.Type == LibBpf.bpf_map__type(map)
                    && info.KeySize == LibBpf.bpf_map__key_size(map)
                    && info.ValueSize == LibBpf.bpf_map__value_size(map)
                    && (adoptCapacity || info.MaxEntries == LibBpf.bpf_map__max_entries(map))
                    && info.MapFlags == LibBpf.bpf_map__map_flags(map);
                resize = !same && !adoptCapacity && info.Type == LibBpf.bpf_map__type(map)
                    && info.KeySize == LibBpf.bpf_map__key_size(map) && info.ValueSize == LibBpf.bpf_map__value_size(map)
                    && info.MapFlags == LibBpf.bpf_map__map_flags(map);
                if (same && adoptCapacity && info.MaxEntries != LibBpf.bpf_map__max_entries(map))
                {
                    // libbpf checks the capacity too when it reuses a pin.
                    var set = LibBpf.bpf_map__set_max_entries(map, info.MaxEntries);
                    if (set != 0)
                    {
                        throw BpfException.FromRc(set, "bpf_map__set_max_entries", path);
                    }
                }
            }
            finally
            {
                if (resize)
                {
                    _resizing.Add((map, fd)); // read after the load, into the new map
                }
                else
                {
                    Libc.close(fd);
                }
            }

            if (same)
            {
                _reused.Add(name);
            }
            else if (adoptCapacity)
            {
                // Other objects' loaded programs hold the shared map: replacing the pin would split them from it.
                throw new InvalidOperationException(
                    $"shared map pin {path} is {mismatch}; {Path} declares {Shape(map)}: unload the objects that share it (or remove the pin) first");
            }
            else
            {
                // libbpf would fail the load on a mismatched pin; a new layout replaces the old map instead. The old
                // pin is parked beside it (pinned under a second name) until the new map is loaded and filled.
                var parked = path + "-old"; // bpffs names have no dots
                BpfFs.Unpin(parked); // an earlier failed restore's
                var old = LibBpf.bpf_obj_get(path);
                if (old < 0)
                {
                    throw BpfException.FromRc(old, "bpf_obj_get", path);
                }

                try
                {
                    BpfFs.Pin(old, parked);
                }
                finally
                {
                    Libc.close(old);
                }

                _parked.Add((path, parked));
                BpfFs.Unpin(path);
                _replaced.Add(name);
            }
        }

        // libbpf reuses the pin if present, else creates the map and pins it there after creation.
        var rc = LibBpf.bpf_map__set_pin_path(map, path);
        if (rc != 0)
        {
            throw BpfException.FromRc(rc, "bpf_map__set_pin_path", path);
        }
    }
}
