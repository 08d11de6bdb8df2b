using System.Globalization;

namespace Loom.Bench.Charts;

/// <summary>One line: its points in data units; a NaN y leaves a gap (the line is not drawn across it).</summary>
internal sealed record LineSeries(string Name, string Color, IReadOnlyList<(double X, double Y)> Points, string? Dash = null);

/// <summary>A point where a measurement did not finish (drawn as an x with a short label), e.g. a sync killed at its timeout.</summary>
internal sealed record LineMarker(double X, double Y, string Label, string Color);

/// <summary>Lines of y against x, each axis linear or log10; the x ticks are the data's own x values (e.g. N = 1, 1000, 10000).</summary>
internal sealed class LineChart
{
    public required string Title { get; init; }

    public IReadOnlyList<string> Subtitle { get; init; } = [];

    public required string XTitle { get; init; }

    public required string YTitle { get; init; }

    public bool LogX { get; init; }

    public bool LogY { get; init; }

    public required IReadOnlyList<LineSeries> Series { get; init; }

    public IReadOnlyList<LineMarker> Markers { get; init; } = [];

    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>Legend entry for the markers (null: no entry).</summary>
    public string? MarkerLegend { get; init; }

    /// <summary>The scales Render used (for the tests: a value maps to this pixel).</summary>
    public (Scale X, Scale Y) Scales(Frame f)
    {
        var points = Series.SelectMany(s => s.Points).Where(p => Drawable(p.X, LogX) && Drawable(p.Y, LogY)).ToList();
        var xs = points.Select(p => p.X).Concat(Markers.Select(m => m.X)).ToList();
        var ys = points.Select(p => p.Y).Concat(Markers.Select(m => m.Y)).ToList();
        // A little room on both sides so the first and last points are not on the frame.
        var pad = (f.PlotRight - f.PlotLeft) * 0.04;
        Scale x = LogX ? LogScale.Decades(xs, f.PlotLeft + pad, f.PlotRight - pad) : LinearScale.Nice(xs, f.PlotLeft + pad, f.PlotRight - pad, includeZero: false);
        Scale y = LogY ? LogScale.Decades(ys, f.PlotBottom, f.PlotTop) : LinearScale.Nice(ys, f.PlotBottom, f.PlotTop);
        return (x, y);
    }

    public string Render()
    {
        var f = new Frame(Title, Subtitle);
        var (x, y) = Scales(f);
        var svg = f.Svg;
        f.DrawTitle();
        f.DrawYAxis(y, YTitle, minorLogGrid: LogY);
        f.DrawXAxisLine();
        var xValues = Series.SelectMany(s => s.Points.Select(p => p.X)).Concat(Markers.Select(m => m.X)).Where(v => Drawable(v, LogX)).Distinct().Order();
        foreach (var v in xValues)
        {
            var px = x.Map(v);
            svg.Line(px, f.PlotTop, px, f.PlotBottom, Frame.Grid, dash: "2,3");
            svg.Line(px, f.PlotBottom, px, f.PlotBottom + 5, Frame.Axis);
            svg.Text(px, f.PlotBottom + 20, v.ToString("#,0.##", CultureInfo.InvariantCulture), Frame.SmallSize, "middle");
        }

        f.DrawXTitle(XTitle);
        foreach (var s in Series)
        {
            foreach (var segment in Segments(s.Points))
            {
                var pixels = segment.Select(p => (x.Map(p.X), y.Map(p.Y))).ToList();
                if (pixels.Count > 1)
                {
                    svg.Polyline(pixels, s.Color, 2.2, s.Dash, "series");
                }

                foreach (var (p, (px, py)) in segment.Zip(pixels))
                {
                    svg.Circle(px, py, 3.5, s.Color, tooltip: $"{s.Name}: {Scale.Label(p.X)} -> {p.Y.ToString("0.###", CultureInfo.InvariantCulture)}");
                }
            }
        }

        foreach (var m in Markers)
        {
            var (px, py) = (x.Map(m.X), y.Map(m.Y));
            Frame.Cross(svg, px, py, m.Color);
            svg.Text(px - 9, py + 4, m.Label, 10, "end", m.Color);
        }

        var legend = Series.Select(s => new LegendEntry(s.Name, s.Color, LegendKind.Line, s.Dash)).ToList();
        if (MarkerLegend is not null && Markers.Count > 0)
        {
            legend.Add(new LegendEntry(MarkerLegend, Frame.Muted, LegendKind.Cross));
        }

        f.DrawLegend(legend, Notes);
        return svg.ToString();
    }

    /// <summary>Runs of drawable points: a NaN, infinite or (on a log axis) non-positive value ends a run.</summary>
    public IEnumerable<List<(double X, double Y)>> Segments(IReadOnlyList<(double X, double Y)> points)
    {
        var run = new List<(double X, double Y)>();
        foreach (var p in points)
        {
            if (Drawable(p.X, LogX) && Drawable(p.Y, LogY))
            {
                run.Add(p);
            }
            else if (run.Count > 0)
            {
                yield return run;
                run = [];
            }
        }

        if (run.Count > 0)
        {
            yield return run;
        }
    }

    private static bool Drawable(double v, bool log) => double.IsFinite(v) && (!log || v > 0);
}
