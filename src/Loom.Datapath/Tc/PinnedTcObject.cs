using Loom.Datapath.Flows;
using Loom.Datapath.Services.Ebpf;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Tc;

/// <summary>
/// A bpf/ object whose programs go on tc hooks: loaded with its maps pinned under one directory (a restart adopts them),
/// its programs attached at one (priority, handle) per hook, and every device it is attached to recorded in one of its
/// own maps (ifindex -> role), so <see cref="Remove"/> finds them again after a restart. tc and ifindexes are per network
/// namespace: call from the namespace the devices live in (NetNs.Run). Not thread-safe. With an events directory, the
/// object's flow-event maps (loom_ev_*) are pinned there, shared with the node's other objects, instead of its own.
/// </summary>
internal sealed class PinnedTcObject : IDisposable
{
    private const int ENODEV = 19;

    private readonly string _objectPath;
    private readonly string _pinDirectory;
    private readonly string _interfacesMap;
    private readonly uint _priority;
    private readonly uint _handle;
    private readonly string? _eventsDirectory;
    private BpfObject? _obj;

    public PinnedTcObject(string objectFile, string? objectDirectory, string pinDirectory, string interfacesMap, uint priority, uint handle,
        string? eventsDirectory = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(pinDirectory);
        if (!Path.IsPathRooted(pinDirectory))
        {
            throw new ArgumentException($"pin directory '{pinDirectory}' must be an absolute path on bpffs", nameof(pinDirectory));
        }

        _objectPath = EbpfServiceBackend.ResolveObject(objectDirectory, objectFile);
        _pinDirectory = pinDirectory;
        _interfacesMap = interfacesMap;
        _priority = priority;
        _handle = handle;
        _eventsDirectory = eventsDirectory;
    }

    public string PinDirectory => _pinDirectory;

    public string ObjectPath => _objectPath;

    /// <summary>The loaded object (loading it, with its maps reused from the pins, on first use).</summary>
    public BpfObject Loaded => _obj ?? Load(_eventsDirectory);

    /// <summary>
    /// Puts each (program, direction) on <paramref name="ifindex"/> and records it with <paramref name="role"/>. All or
    /// nothing: if one attach fails, the hooks this call attached are removed again and the error is rethrown.
    /// </summary>
    public void Attach(int ifindex, uint role, params (string Program, TcDirection Direction)[] hooks)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ifindex);
        var obj = Loaded;
        var done = new List<TcDirection>();
        try
        {
            foreach (var (name, direction) in hooks)
            {
                var prog = obj.Program(name);
                if (BpfTc.Query(ifindex, direction, _priority, _handle) != prog.Id)
                {
                    prog.AttachTc(ifindex, direction, _priority, _handle);
                    done.Add(direction);
                }
            }

            obj.Map<uint, uint>(_interfacesMap).Update((uint)ifindex, role);
        }
        catch
        {
            foreach (var direction in done)
            {
                BpfTc.Detach(ifindex, direction, _priority, _handle);
            }

            throw;
        }
    }

    /// <summary>Removes this object's filters from <paramref name="ifindex"/> (if the device still exists) and forgets it.</summary>
    public void Detach(int ifindex)
    {
        DetachHooks(ifindex);
        Loaded.Map<uint, uint>(_interfacesMap).Delete((uint)ifindex);
    }

    /// <summary>Devices this object is attached to (by this or a previous run) with their roles.</summary>
    public IReadOnlyDictionary<int, uint> Interfaces() =>
        Loaded.Map<uint, uint>(_interfacesMap).Entries().ToDictionary(e => (int)e.Key, e => e.Value);

    /// <summary>The id of the program at this object's (priority, handle) on a hook, or null.</summary>
    public uint? AttachedProgram(int ifindex, TcDirection direction) => BpfTc.Query(ifindex, direction, _priority, _handle);

    /// <summary>Each index of a per-CPU u64 array summed over the CPUs.</summary>
    public ulong[] SumCounters(string map, int count)
    {
        var stats = Loaded.PerCpuMap<uint, ulong>(map);
        var sums = new ulong[count];
        for (var i = 0; i < count; i++)
        {
            foreach (var v in stats.Lookup((uint)i))
            {
                sums[i] += v;
            }
        }

        return sums;
    }

    /// <summary>
    /// Detaches from every recorded device, closes the object and deletes the pin directory: the programs and maps are
    /// freed once nothing holds them. Without pins there is nothing to find and nothing is loaded.
    /// </summary>
    public void Remove()
    {
        if (_obj is null && !Directory.Exists(_pinDirectory))
        {
            return;
        }

        // Loaded only to list the devices: with its own least events maps, not the shared pins (which would create the
        // events directory again on a node that is being cleaned).
        var obj = _obj ?? Load(eventsDirectory: null);
        foreach (var ifindex in obj.Map<uint, uint>(_interfacesMap).Entries().Select(e => (int)e.Key))
        {
            DetachHooks(ifindex);
        }

        Dispose();
        BpfFs.RemoveTree(_pinDirectory);
    }

    private BpfObject Load(string? eventsDirectory)
    {
        if (_pinDirectory.StartsWith(BpfFs.DefaultRoot + "/", StringComparison.Ordinal))
        {
            BpfFs.EnsureMounted();
        }

        var obj = BpfObject.Open(_objectPath);
        try
        {
            FlowEventMaps.Share(obj, eventsDirectory);
            obj.Load(_pinDirectory);
        }
        catch
        {
            obj.Dispose();
            throw;
        }

        _obj = obj;
        return obj;
    }

    private void DetachHooks(int ifindex)
    {
        try
        {
            BpfTc.Detach(ifindex, TcDirection.Ingress, _priority, _handle);
            BpfTc.Detach(ifindex, TcDirection.Egress, _priority, _handle);
        }
        catch (BpfException e) when (e.Errno == ENODEV)
        {
            // The device is gone (a deleted pod's veth) and its filters with it.
        }
    }

    /// <summary>Closes this process's descriptors; pins and filters stay (a restart adopts them).</summary>
    public void Dispose()
    {
        _obj?.Dispose();
        _obj = null;
    }
}
