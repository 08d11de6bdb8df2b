using System.Globalization;
using System.Text.Json;

namespace Loom.Bench.Charts;

/// <summary>
/// The CNI bench (bench/cni.sh): ADD and DEL p50 per row, whiskers to p99. Every top-level array of the JSON whose
/// items carry add and del figures is drawn (rows, and floor rows when the bench has them), and the process start
/// probes named floor* as dashed lines: what no exec'd plugin can go under.
/// </summary>
internal static class CniChart
{
    public static IReadOnlyList<(string File, string Svg)> Build(JsonElement root)
    {
        var groups = root.EnumerateObject()
            .Where(p => p.Value.ValueKind == JsonValueKind.Array)
            .SelectMany(p => p.Value.EnumerateArray())
            .Where(item => double.IsFinite(item.Num("add", "p50")) || double.IsFinite(item.Num("del", "p50")))
            .ToList();
        var probes = root.Items("probes").ToList();
        var refs = probes.Where(p => p.Str("key", "").StartsWith("floor", StringComparison.Ordinal))
            .Select((p, i) => new ReferenceLine(p.Num("stats", "p50"), $"{p.Str("title")}, p50 {Ms(p.Num("stats", "p50"))} ms", i == 0 ? "#555" : "#999"))
            .Where(r => double.IsFinite(r.Y)).ToList();
        var notes = probes.Where(p => !p.Str("key", "").StartsWith("floor", StringComparison.Ordinal))
            .Select(p => $"{p.Str("title")}: p50 {Ms(p.Num("stats", "p50"))} ms, p99 {Ms(p.Num("stats", "p99"))} ms").ToList();
        var machine = root.Prop("machine") ?? default;
        var chart = new BarChart
        {
            Title = "CNI: one plugin ADD / DEL per row (p50, whisker to p99)",
            Subtitle =
            [
                ChartJson.Provenance(root.Str("date"), root.Str("commit"), machine),
                $"load {machine.Str("load_average_at_start")} -> {machine.Str("load_average_at_end")}; {root.Num("pods")} pods x {root.Num("rounds")} rounds, ADD each then DEL each, one exec at a time",
            ],
            YTitle = "milliseconds per call (lower is better)",
            Categories = groups.Select(g => g.Str("title")).ToList(),
            Series =
            [
                new BarSeries("ADD p50 (whisker p99)", "#1f77b4", groups.Select(g => Of(g, "add")).ToList()),
                new BarSeries("DEL p50 (whisker p99)", "#ff7f0e", groups.Select(g => Of(g, "del")).ToList()),
            ],
            References = refs,
            Notes = notes,
        };
        return [("cni.svg", chart.Render())];
    }

    private static Bar? Of(JsonElement g, string op) =>
        double.IsFinite(g.Num(op, "p50")) ? new Bar(g.Num(op, "p50"), double.IsFinite(g.Num(op, "p99")) ? g.Num(op, "p99") : null) : null;

    private static string Ms(double v) => v.ToString("0.0", CultureInfo.InvariantCulture);
}
