using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Loom.Bench.Datapath;

/// <summary>The datapath bench's table on stdout and its JSON.</summary>
internal static class DatapathReport
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static Report Build(List<ConfigResult> results, DatapathOptions options, Machine start, Machine end, TimeSpan elapsed)
    {
        var t = new StringBuilder();
        t.AppendLine(CultureInfo.InvariantCulture, $"Cross-node TCP between two lab nodes: throughput (iperf3, median of {options.Reps} runs of {options.Seconds} s), " +
            $"1-byte round trip (p50/p99 of every round trip, {options.Reps} x {options.LatencySeconds} s)");
        t.AppendLine("ratio = the configuration / the underlay (eth1 to eth1) in the same lab: the median over the runs of each pair's ratio, the two runs of a pair back to back;");
        t.AppendLine("absolute figures: medians of the runs (throughput), percentiles of every round trip; throughput higher is better, round trip lower is better");
        t.AppendLine(CultureInfo.InvariantCulture, $"load average {start.LoadAverage} at start, {end.LoadAverage} at end (1/5/15 min, {start.Nproc} CPUs); total {elapsed.TotalSeconds:0} s");
        t.AppendLine();
        t.AppendLine(CultureInfo.InvariantCulture, $"{"",-50} {"1 stream",-15} {"4 streams",-15} {"rtt p50",-15} {"rtt p99",-15}");
        t.AppendLine(CultureInfo.InvariantCulture, $"{"configuration",-50} {"Gbit/s",7} {"ratio",7} {"Gbit/s",7} {"ratio",7} {"us",7} {"ratio",7} {"us",7} {"ratio",7}  goal (issue 12)");
        var underlay = Pooled(results.Where(r => r.Status == "ok").Select(r => r.Underlay));
        var ok = underlay.OneStream.Count > 0;
        t.AppendLine(CultureInfo.InvariantCulture,
            $"{"underlay node-to-node (eth1; every lab's runs)",-50} {Num(underlay.Gbps1),7} {(ok ? "1.00x" : "-"),7} {Num(underlay.Gbps4),7} {(ok ? "1.00x" : "-"),7} " +
            $"{Us(underlay.Rtt.P50),7} {(ok ? "1.00x" : "-"),7} {Us(underlay.Rtt.P99),7} {(ok ? "1.00x" : "-"),7}  baseline");
        foreach (var r in results)
        {
            if (r.Status != "ok")
            {
                t.AppendLine(CultureInfo.InvariantCulture, $"{r.Config.Title,-50} {(r.Status == "error" ? "ERROR" : "not working")}: {Short(r.Reason)}");
                t.AppendLine(CultureInfo.InvariantCulture, $"{"",-50} goal {r.Config.Goal}: not measured");
                continue;
            }

            var x = r.Ratios;
            t.AppendLine(CultureInfo.InvariantCulture,
                $"{r.Config.Title,-50} {Num(r.Pods.Gbps1),7} {Ratio(x.One),7} {Num(r.Pods.Gbps4),7} {Ratio(x.Four),7} " +
                $"{Us(r.Pods.Rtt.P50),7} {Ratio(x.P50),7} {Us(r.Pods.Rtt.P99),7} {Ratio(x.P99),7}  {r.Config.Goal}{Verdict(r.Config, x)}");
        }

        t.AppendLine();
        t.AppendLine("Each lab: the underlay it was compared with, the spread of the runs, TCP retransmissions (iperf3 sender, summed), its datapath");
        foreach (var r in results)
        {
            t.AppendLine(CultureInfo.InvariantCulture, $"{r.Config.Key,-8} lab up {Num(r.LabUpS, "0.0")} s, load {r.LoadStart} -> {r.LoadEnd}, status {r.Status}");
            if (r.Status == "ok")
            {
                t.AppendLine(CultureInfo.InvariantCulture, $"{"",-8} underlay {Line(r.Underlay)}");
                t.AppendLine(CultureInfo.InvariantCulture, $"{"",-8} pods     {Line(r.Pods)}; pod b reached in {Num(r.ReachS, "0.0")} s");
            }

            if (r.ObservedPath is not null)
            {
                t.AppendLine(CultureInfo.InvariantCulture, $"{"",-8} a {r.PodA}, b {r.PodB}; {r.ObservedPath}");
            }
        }

        var json = JsonSerializer.Serialize(new
        {
            Date = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            Commit = Environment.GetEnvironmentVariable("LOOM_BENCH_COMMIT") ?? "?",
            Machine = start,
            LoadEnd = end.LoadAverage,
            ElapsedS = elapsed.TotalSeconds,
            Options = new { options.Reps, options.Seconds, options.LatencySeconds, options.ReachTimeoutSeconds, Configs = options.Configs.Select(c => c.Key) },
            Underlay = Series(underlay),
            Configs = results.Select(r => new
            {
                r.Config.Key,
                r.Config.Title,
                r.Config.File,
                r.Status,
                r.Reason,
                r.Prefix,
                r.LabUpS,
                r.ObservedPath,
                r.PodA,
                r.PodB,
                r.ReachS,
                r.LoadStart,
                r.LoadEnd,
                Goal = r.Config.Goal,
                Verdict = r.Status == "ok" ? Verdict(r.Config, r.Ratios).TrimStart(':', ' ') : "not measured",
                Ratios = r.Status == "ok" ? r.Ratios : null,
                Underlay = Series(r.Underlay),
                Pods = Series(r.Pods),
            }),
        }, JsonOptions);
        return new Report(t.ToString(), json);
    }

    /// <summary>MET when both throughput ratios reach the goal and the round-trip p50 stays within its own.</summary>
    private static string Verdict(NetConfig c, PairedRatios x)
    {
        if (c.MinThroughput is null && c.MaxLatency is null)
        {
            return "";
        }

        var misses = new List<string>();
        if (c.MinThroughput is { } min && !(x.One >= min && x.Four >= min))
        {
            misses.Add($"thr {Ratio(x.One)} / {Ratio(x.Four)}");
        }

        if (c.MaxLatency is { } max && !(x.P50 <= max))
        {
            misses.Add($"p50 {Ratio(x.P50)}");
        }

        return misses.Count == 0 ? ": MET" : ": NOT MET (" + string.Join(", ", misses) + ")";
    }

    private static PathSeries Pooled(IEnumerable<PathSeries> all)
    {
        var p = new PathSeries();
        foreach (var s in all)
        {
            p.OneStream.AddRange(s.OneStream);
            p.FourStreams.AddRange(s.FourStreams);
            p.RttUs.AddRange(s.RttUs);
            p.RttP50PerRep.AddRange(s.RttP50PerRep);
            p.RttP99PerRep.AddRange(s.RttP99PerRep);
        }

        return p;
    }

    private static object Series(PathSeries s) => new
    {
        Gbps1 = s.OneStream.Select(r => r.Gbps),
        Gbps4 = s.FourStreams.Select(r => r.Gbps),
        Retransmits1 = s.OneStream.Select(r => r.Retransmits),
        Retransmits4 = s.FourStreams.Select(r => r.Retransmits),
        MedianGbps1 = s.Gbps1,
        MedianGbps4 = s.Gbps4,
        RttUs = s.Rtt,
        RttP50PerRep = s.RttP50PerRep,
        RttP99PerRep = s.RttP99PerRep,
    };

    private static string Line(PathSeries s) => string.Create(CultureInfo.InvariantCulture,
        $"1 stream {string.Join(' ', s.OneStream.Select(r => r.Gbps.ToString("0.00", CultureInfo.InvariantCulture)))} Gbit/s (retr {s.OneStream.Sum(r => r.Retransmits)}), " +
        $"4 streams {string.Join(' ', s.FourStreams.Select(r => r.Gbps.ToString("0.00", CultureInfo.InvariantCulture)))} (retr {s.FourStreams.Sum(r => r.Retransmits)}), " +
        $"rtt p50 / p99 per run {string.Join(' ', s.RttP50PerRep.Zip(s.RttP99PerRep).Select(v => string.Create(CultureInfo.InvariantCulture, $"{v.First:0.0}/{v.Second:0.0}")))} us, {s.RttUs.Count} round trips");

    /// <summary>The table keeps a reason to about a line; the run's log and the JSON have it whole.</summary>
    private static string Short(string? reason) =>
        reason is null ? "" : reason.Length <= 150 ? reason : reason[..150].TrimEnd() + " ... (whole reason above and in the JSON)";

    private static string Ratio(double? r) => r is { } v ? v.ToString("0.00", CultureInfo.InvariantCulture) + "x" : "-";

    private static string Num(double? v, string format = "0.00") => v is { } x && !double.IsNaN(x) ? x.ToString(format, CultureInfo.InvariantCulture) : "-";

    private static string Us(double v) => Num(v, "0.0");
}
