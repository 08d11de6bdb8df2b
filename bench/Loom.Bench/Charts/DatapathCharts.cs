using System.Globalization;
using System.Text.Json;

namespace Loom.Bench.Charts;

/// <summary>
/// The datapath bench (bench/datapath.sh): pod-to-pod throughput and round trip per configuration, beside the
/// underlay (node to node) pooled over every lab. Bars are the figures the bench reports (medians of the
/// repetitions, nearest-rank percentiles of the round trips); a configuration that did not work has no bar.
/// </summary>
internal static class DatapathCharts
{
    public static IReadOnlyList<(string File, string Svg)> Build(JsonElement root)
    {
        var configs = root.Items("configs").ToList();
        var paths = new List<(string Title, JsonElement? Series)> { ("underlay (eth1 to eth1)", root.Prop("underlay")) };
        paths.AddRange(configs.Select(c => (
            c.Str("status") == "ok" ? Short(c.Str("title")) : $"{Short(c.Str("title"))}: {c.Str("status")}",
            c.Str("status") == "ok" ? c.Prop("pods") : null)));
        var machine = root.Prop("machine") ?? default;
        var options = root.Prop("options") ?? default;
        string[] subtitle =
        [
            ChartJson.Provenance(root.Str("date"), root.Str("commit"), machine),
            $"load {machine.Str("load_average")} -> {root.Str("load_end")}; {options.Num("reps")} reps, iperf3 {options.Num("seconds")} s, 1-byte TCP ping-pong {options.Num("latency_seconds")} s; cross-node, 2-node lab per configuration",
        ];
        var ratios = configs.Where(c => c.Str("status") == "ok").Select(c => string.Create(CultureInfo.InvariantCulture,
            $"{c.Str("key")}: {X(c.Num("ratios", "one"))} / {X(c.Num("ratios", "four"))} thr, {X(c.Num("ratios", "p50"))} p50, goal: {Verdict(c)}")).ToList();
        var notes = new List<string> { "pods / underlay of the same lab (1 / 4 streams, rtt p50):" };
        notes.AddRange(ratios);
        var categories = paths.Select(p => p.Title).ToList();
        var throughput = new BarChart
        {
            Title = "Datapath: pod-to-pod TCP throughput (median of the reps, whisker min..max)",
            Subtitle = subtitle,
            YTitle = "Gbit/s (higher is better)",
            Categories = categories,
            Series =
            [
                new BarSeries("1 stream", "#2ca02c", paths.Select(p => Gbps(p.Series, "1")).ToList()),
                new BarSeries("4 streams", "#9467bd", paths.Select(p => Gbps(p.Series, "4")).ToList()),
            ],
            Notes = notes,
            ValueFormat = "0.0",
        };
        var latency = new BarChart
        {
            Title = "Datapath: pod-to-pod round trip of 1 byte over TCP",
            Subtitle = subtitle,
            YTitle = "microseconds (log scale; lower is better)",
            Categories = categories,
            Series =
            [
                new BarSeries("p50", "#17becf", paths.Select(p => Rtt(p.Series, "p50")).ToList()),
                new BarSeries("p99", "#8c564b", paths.Select(p => Rtt(p.Series, "p99")).ToList()),
            ],
            Notes = notes,
            ValueFormat = "0",
            LogY = true,
        };
        return [("datapath-throughput.svg", throughput.Render()), ("datapath-latency.svg", latency.Render())];
    }

    private static Bar? Gbps(JsonElement? series, string streams)
    {
        if (series is not { } s || !double.IsFinite(s.Num("median_gbps" + streams)))
        {
            return null;
        }

        var runs = s.Nums("gbps" + streams).Where(double.IsFinite).ToList();
        return new Bar(s.Num("median_gbps" + streams), runs.Count > 0 ? runs.Max() : null, runs.Count > 0 ? runs.Min() : null);
    }

    private static Bar? Rtt(JsonElement? series, string percentile) =>
        series is { } s && double.IsFinite(s.Num("rtt_us", percentile)) ? new Bar(s.Num("rtt_us", percentile)) : null;

    /// <summary>"routed+VXLAN" of "routed+VXLAN (cilium-tunnel.yaml)": the file is in the JSON, the label stays short.</summary>
    public static string Short(string title) => title.IndexOf(" (", StringComparison.Ordinal) is var i and > 0 ? title[..i] : title;

    /// <summary>MET / NOT MET without the figures (the note shows them), "none" for a configuration without a goal.</summary>
    private static string Verdict(JsonElement c) => c.Str("verdict", "") is { Length: > 0 } v ? v.Split(" (")[0] : "none";

    private static string X(double v) => double.IsFinite(v) ? v.ToString("0.00", CultureInfo.InvariantCulture) + "x" : "-";
}
