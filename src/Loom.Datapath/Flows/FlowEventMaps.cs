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

    private static readonly string[] Names = [Ring, Lost, Config, Aggregation];

    /// <summary>The node's events directory: beside each object's own pins (policy, lb4, masq, host_routing).</summary>
    public static string DirectoryFor(string bpfPinDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(bpfPinDir);
        return Path.Combine(bpfPinDir, "events");
    }

    /// <summary>Makes <paramref name="obj"/> (not loaded yet) pin its loom_ev_* maps in <paramref name="eventsDirectory"/>, if one is given.</summary>
    public static void Share(BpfObject obj, string? eventsDirectory)
    {
        if (eventsDirectory is not null)
        {
            CheckDirectory(eventsDirectory);
            obj.PinShared(Prefix, eventsDirectory);
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
