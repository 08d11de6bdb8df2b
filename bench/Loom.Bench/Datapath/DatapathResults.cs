namespace Loom.Bench.Datapath;

/// <summary>The figures of one path (the underlay, or the pods) in one lab, over the repetitions.</summary>
internal sealed class PathSeries
{
    public List<IperfRun> OneStream { get; } = [];

    public List<IperfRun> FourStreams { get; } = [];

    /// <summary>Round trips of every repetition, microseconds (pooled for the percentiles).</summary>
    public List<double> RttUs { get; } = [];

    /// <summary>p50 of each repetition, paired with the other path's for the ratios.</summary>
    public List<double> RttP50PerRep { get; } = [];

    public List<double> RttP99PerRep { get; } = [];

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

    /// <summary>
    /// Pods over underlay: the median over the repetitions of each pair's ratio (the two runs of a pair are back to
    /// back), which a load drifting between repetitions moves less than a ratio of medians would.
    /// </summary>
    public PairedRatios Ratios => new(
        Paired(Pods.OneStream.Select(r => r.Gbps), Underlay.OneStream.Select(r => r.Gbps)),
        Paired(Pods.FourStreams.Select(r => r.Gbps), Underlay.FourStreams.Select(r => r.Gbps)),
        Paired(Pods.RttP50PerRep, Underlay.RttP50PerRep),
        Paired(Pods.RttP99PerRep, Underlay.RttP99PerRep));

    private static double? Paired(IEnumerable<double> pods, IEnumerable<double> underlay) =>
        PathSeries.Median(pods.Zip(underlay).Where(p => p.Second > 0 && !double.IsNaN(p.First) && !double.IsNaN(p.Second)).Select(p => p.First / p.Second));
}

internal sealed record PairedRatios(double? One, double? Four, double? P50, double? P99);
