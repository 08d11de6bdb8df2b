using Loom.Linux.Bpf;

namespace Loom.Datapath.Flows;

/// <summary>How the programs aggregate traces (Cilium's monitorAggregation levels and numbers; LOOM_AGG_*).</summary>
public enum FlowAggregation : uint
{
    /// <summary>A trace for every packet at every observation point.</summary>
    None = 0,

    /// <summary>
    /// A trace for the first packet of a {tuple, observation point}, again for each TCP flag among SYN, FIN, RST and ACK
    /// not reported yet, and again after the interval. Drops are never aggregated.
    /// </summary>
    Medium = 2,
}

/// <summary>
/// loom_ev_config, which every program reads before emitting anything: events on or off (off, the map's initial state,
/// costs one array lookup per packet), the aggregation and its interval.
/// </summary>
public sealed record FlowEventConfig(bool Enabled, FlowAggregation Aggregation, TimeSpan Interval)
{
    /// <summary>The default interval after which a flow is traced again under medium aggregation.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(5);

    public static FlowEventConfig Default { get; } = new(true, FlowAggregation.Medium, DefaultInterval);

    /// <summary>The config in <paramref name="eventsDirectory"/>'s pins (created if absent, as off).</summary>
    public static FlowEventConfig Read(string eventsDirectory, string? objectDirectory = null)
    {
        FlowEventMaps.Ensure(eventsDirectory, objectDirectory);
        using var map = BpfMap.OpenPinned(Path.Combine(eventsDirectory, FlowEventMaps.Config));
        var v = map.As<uint, LoomEvConfig>().Lookup(0);
        return new FlowEventConfig(
            (v.Flags & LoomEvConfig.Enabled) != 0,
            (FlowAggregation)v.Aggregation,
            TimeSpan.FromSeconds(v.IntervalSeconds == 0 ? DefaultInterval.TotalSeconds : v.IntervalSeconds));
    }

    /// <summary>Writes this config into <paramref name="eventsDirectory"/>'s pins (created if absent); every program sees it at its next packet.</summary>
    public void Write(string eventsDirectory, string? objectDirectory = null)
    {
        var value = Validate();
        FlowEventMaps.Ensure(eventsDirectory, objectDirectory);
        using var map = BpfMap.OpenPinned(Path.Combine(eventsDirectory, FlowEventMaps.Config));
        map.As<uint, LoomEvConfig>().Update(0, value);
    }

    private LoomEvConfig Validate()
    {
        if (!Enum.IsDefined(Aggregation))
        {
            throw new ArgumentException($"flow event aggregation {(uint)Aggregation} is not one of none (0), medium (2)");
        }

        if (Interval < TimeSpan.FromSeconds(1) || Interval > TimeSpan.FromHours(1) || Interval.Ticks % TimeSpan.TicksPerSecond != 0)
        {
            throw new ArgumentException($"flow event interval {Interval} must be whole seconds from 1 s to 1 h");
        }

        return new LoomEvConfig(Enabled ? LoomEvConfig.Enabled : 0, (uint)Aggregation, (uint)Interval.TotalSeconds);
    }
}
