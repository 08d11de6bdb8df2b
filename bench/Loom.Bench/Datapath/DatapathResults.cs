namespace Loom.Bench.Datapath;

/// <summary>The figures of one path (the underlay, or the pods) in one lab, over the repetitions.</summary>
internal sealed class PathSeries
{
    public List<IperfRun> OneStream { get; } = [];

    public List<IperfRun> FourStreams { get; } = [];

    /// <summary>Round trips of every repetition, microseconds (pooled for the percentiles).</summary>
    public List<double> RttUs { get; } = [];

    /// <summary>p50 of each repetition, to see the spread between them.</summary>
    public List<double> RttP50PerRep { get; } = [];

    public double? Gbps1 => Median(OneStream.Select(r => r.Gbps));

    public double? Gbps4 => Median(FourStreams.Select(r => r.Gbps));

    public Stats Rtt => Stats.Of(RttUs);

    public static double? Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? null : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }
}

/// <summary>One configuration's run: its lab, the observed datapath, the figures, or why there are none.</summary>
internal sealed class ConfigResult(NetConfig config)
{
    public NetConfig Config { get; } = config;

    /// <summary>ok, not working (the lab or the pods' path does not work), error (the bench itself failed).</summary>
    public string Status { get; set; } = "ok";

    public string? Reason { get; set; }

    public string Prefix { get; set; } = "";

    public double? LabUpS { get; set; }

    public string? ObservedPath { get; set; }

    public string? PodA { get; set; }

    public string? PodB { get; set; }

    public double? ReachS { get; set; }

    public string LoadStart { get; set; } = "";

    public string LoadEnd { get; set; } = "";

    public PathSeries Underlay { get; } = new();

    public PathSeries Pods { get; } = new();
}
