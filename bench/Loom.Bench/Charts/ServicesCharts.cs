using System.Globalization;
using System.Text.Json;

namespace Loom.Bench.Charts;

/// <summary>The services bench (bench/services.sh): conn/s and sync times against N services, a line per backend.</summary>
internal static class ServicesCharts
{
    /// <summary>A colour per backend, so both charts read alike; an unknown backend gets a palette colour.</summary>
    public static string Color(string backend, int index) => backend switch
    {
        "iptables" => "#d62728",
        "nftables" => "#ff7f0e",
        "ebpf" => "#1f77b4",
        _ => Palette.At(index + 3),
    };

    public static IReadOnlyList<(string File, string Svg)> Build(JsonElement root)
    {
        var runs = root.Items("runs").ToList();
        var first = runs.FirstOrDefault();
        var loads = string.Join("; ", runs.Select(r => $"{r.Str("backend")} {r.Str("load_average_at_start")} -> {r.Str("load_average_at_end")}"));
        var subtitle = new[]
        {
            ChartJson.Provenance(root.Str("date"), root.Str("commit"), first, first.Str("runtime", "")),
            "load (1/5/15 min) " + loads,
        };
        return [("services-conn.svg", Connections(runs, subtitle)), ("services-sync.svg", Sync(runs, subtitle))];
    }

    public static string Connections(IReadOnlyList<JsonElement> runs, IReadOnlyList<string> subtitle)
    {
        var series = new List<LineSeries>();
        var notes = new List<string>();
        for (var i = 0; i < runs.Count; i++)
        {
            var r = runs[i];
            var name = r.Str("backend");
            var cells = r.Items("cells").ToList();
            series.Add(new LineSeries($"{name}: service (ClusterIP)", Color(name, i), Points(cells, c => c.Num("service", "rate"))));
            series.Add(new LineSeries($"{name}: direct to the pods, same rules", Color(name, i), Points(cells, c => c.Num("direct", "rate")), "5,4"));
            if (r.Num("baseline", "rate") is var b && double.IsFinite(b))
            {
                notes.Add($"{name}: direct before any rule {b.ToString("#,0", CultureInfo.InvariantCulture)} conn/s");
            }
        }

        notes.Add("N with no line point: not measured (its sync was killed).");
        return new LineChart
        {
            Title = "Services: new TCP connections per second against the number of services",
            Subtitle = subtitle,
            XTitle = "services in the node (log scale), 4 endpoints each",
            YTitle = "connections per second (higher is better)",
            LogX = true,
            Series = series,
            Notes = notes,
        }.Render();
    }

    public static string Sync(IReadOnlyList<JsonElement> runs, IReadOnlyList<string> subtitle)
    {
        // initial: first sync into an empty kernel; full: a new instance over N in place; change: one endpoint.
        var kinds = new (string Key, string Name, string? Dash)[] { ("initial", "initial", null), ("full", "full (restart)", "7,4"), ("change", "one endpoint change", "2,3") };
        var series = new List<LineSeries>();
        var killed = new List<LineMarker>();
        for (var i = 0; i < runs.Count; i++)
        {
            var name = runs[i].Str("backend");
            var cells = runs[i].Items("cells").ToList();
            foreach (var (key, title, dash) in kinds)
            {
                series.Add(new LineSeries($"{name}: {title}", Color(name, i), Points(cells, c => c.Num(key, "stats", "p50")), dash));
                foreach (var c in cells)
                {
                    // A sync stopped at its timeout has no p50: mark it at the timeout, where it was at least.
                    if (!double.IsFinite(c.Num(key, "stats", "p50")) && c.Num(key, "timed_out") > 0 && c.Num(key, "timeout_seconds") is var t && t > 0)
                    {
                        killed.Add(new LineMarker(c.Num("services"), t * 1000, $"{name} {title} > {t.ToString(CultureInfo.InvariantCulture)} s", Color(name, i)));
                    }
                }
            }
        }

        return new LineChart
        {
            Title = "Services: time of one Sync (p50) against the number of services",
            Subtitle = subtitle,
            XTitle = "services in the node (log scale), 4 endpoints each",
            YTitle = "milliseconds, p50 (log scale; lower is better)",
            LogX = true,
            LogY = true,
            Series = series,
            Markers = killed,
            MarkerLegend = "killed at the sync timeout",
            Notes = ["initial: into an empty kernel; full: a new instance over the N in place (agent restart); change: one endpoint replaced."],
        }.Render();
    }

    private static List<(double X, double Y)> Points(IEnumerable<JsonElement> cells, Func<JsonElement, double> y) =>
        cells.Select(c => (c.Num("services"), y(c))).ToList();
}

internal static class Palette
{
    private static readonly string[] Colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

    public static string At(int i) => Colors[((i % Colors.Length) + Colors.Length) % Colors.Length];
}
