using System.Runtime.InteropServices;
using Loom.Datapath.Services.Ebpf;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Flows;

/// <summary>
/// The flow-event maps every Loom object declares (bpf/flow_events.h) and shares through one pin directory per node,
/// <c>&lt;BpfPinDir&gt;/events</c>: the ring the programs write events into, the count of events that did not fit, the
/// config (on/off, aggregation) and the aggregation table. Whoever creates the pins first chooses their capacity; the
/// others reuse them (<see cref="BpfObject.PinShared"/>).
/// </summary>
public static class FlowEventMaps
{
    public const string ObjectFile = "flow_events.o";

    /// <summary>The prefix of the shared maps' names: what <see cref="Share"/> pins in the events directory.</summary>
    public const string Prefix = "loom_ev_";

    public const string Ring = "loom_ev_ring";
    public const string Lost = "loom_ev_lost";
    public const string Config = "loom_ev_config";
    public const string Aggregation = "loom_ev_agg";

    /// <summary>The ring's size in bytes as flow_events.h declares it (1 MiB: about 18,000 events).</summary>
    public const uint DefaultRingBytes = 1 << 20;

    private const string EventsName = "events";

    private static readonly string[] Names = [Ring, Lost, Config, Aggregation];

    /// <summary>The node's events directory: beside each object's own pins (policy, lb4, masq, host_routing).</summary>
    public static string DirectoryFor(string bpfPinDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(bpfPinDir);
        return Path.Combine(bpfPinDir, EventsName);
    }

    /// <summary>
    /// Makes <paramref name="obj"/> (not loaded yet) pin its loom_ev_* maps in <paramref name="eventsDirectory"/>. Without
    /// one they are the object's own, which nobody reads or turns on: they shrink to their least size (a page of ring,
    /// one aggregation entry) rather than take a megabyte of ring and a preallocated table each.
    /// </summary>
    public static void Share(BpfObject obj, string? eventsDirectory)
    {
        ArgumentNullException.ThrowIfNull(obj);
        if (eventsDirectory is not null)
        {
            CheckDirectory(eventsDirectory);
            obj.PinShared(Prefix, eventsDirectory);
        }
        else if (obj.MapNames.Contains(Ring))
        {
            obj.SetMaxEntries(Ring, (uint)Environment.SystemPageSize);
            obj.SetMaxEntries(Aggregation, 1);
        }
    }

    /// <summary>
    /// Creates the shared maps in <paramref name="eventsDirectory"/> (loading flow_events.o) unless all are pinned there
    /// already; <paramref name="ringBytes"/> (a power of two, at least a page) sizes a ring created now.
    /// </summary>
    public static void Ensure(string eventsDirectory, string? objectDirectory = null, uint ringBytes = DefaultRingBytes)
    {
        CheckDirectory(eventsDirectory);
        if (ringBytes < (uint)Environment.SystemPageSize || !uint.IsPow2(ringBytes))
        {
            throw new ArgumentOutOfRangeException(nameof(ringBytes), ringBytes,
                $"the flow event ring's size must be a power of two of at least {Environment.SystemPageSize} bytes");
        }

        if (Names.All(n => File.Exists(Path.Combine(eventsDirectory, n))))
        {
            return;
        }

        if (eventsDirectory.StartsWith(BpfFs.DefaultRoot + "/", StringComparison.Ordinal))
        {
            BpfFs.EnsureMounted();
        }

        using var obj = BpfObject.Open(EbpfServiceBackend.ResolveObject(objectDirectory, ObjectFile));
        obj.SetMaxEntries(Ring, ringBytes);
        obj.PinShared(Prefix, eventsDirectory);
        obj.Load();
    }

    /// <summary>Deletes the events directory and its pins (the maps go once no program holds them); no-op if absent.</summary>
    public static void Remove(string eventsDirectory)
    {
        CheckDirectory(eventsDirectory);
        BpfFs.RemoveTree(eventsDirectory);
    }

    /// <summary>
    /// Deletes <c>&lt;BpfPinDir&gt;/events</c> once nothing uses it: no Loom object's pins are left beside it (policy,
    /// lb4, masq, host_routing each keep a directory there while in use) and events are off (on, the agent's reader uses
    /// it, and new pins would start off). Returns whether it did. For the agent, after it removed an object's pins for good.
    /// </summary>
    public static bool RemoveIfUnused(string bpfPinDir)
    {
        var events = DirectoryFor(bpfPinDir);
        if (!Directory.Exists(events) || Directory.EnumerateDirectories(bpfPinDir).Any(d => Path.GetFileName(d) != EventsName))
        {
            return false;
        }

        var config = Path.Combine(events, Config);
        if (File.Exists(config))
        {
            using var map = BpfMap.OpenPinned(config);
            if ((map.As<uint, LoomEvConfig>().Lookup(0).Flags & LoomEvConfig.Enabled) != 0)
            {
                return false;
            }
        }

        Remove(events);
        return true;
    }

    private static void CheckDirectory(string eventsDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(eventsDirectory);
        if (!Path.IsPathRooted(eventsDirectory))
        {
            throw new ArgumentException($"events directory '{eventsDirectory}' must be an absolute path on bpffs", nameof(eventsDirectory));
        }
    }
}

/// <summary>struct loom_ev_cfg (12 bytes): loom_ev_config's only value.</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct LoomEvConfig(uint Flags, uint Aggregation, uint IntervalSeconds)
{
    /// <summary>LOOM_EVC_ENABLED.</summary>
    public const uint Enabled = 1;
}
