using System.Globalization;

namespace Loom.Bench.Charts;

/// <summary>One bar's value and, optionally, a whisker up to High (e.g. p50 with a whisker to p99).</summary>
/// <remarks>Low, when set, starts the whisker below the bar's top (e.g. the lowest repetition).</remarks>
internal sealed record Bar(double Value, double? High = null, double? Low = null);

/// <summary>One series of bars, one value per category (null: no bar there).</summary>
internal sealed record BarSeries(string Name, string Color, IReadOnlyList<Bar?> Values);

/// <summary>A horizontal line across the plot, e.g. the process start floor.</summary>
internal sealed record ReferenceLine(double Y, string Label, string Color);

/// <summary>Grouped vertical bars: one group per category, one bar per series, a linear y axis from zero.</summary>
internal sealed class BarChart
{
    public required string Title { get; init; }

    public IReadOnlyList<string> Subtitle { get; init; } = [];

    public required string YTitle { get; init; }

    public string? XTitle { get; init; }

    public required IReadOnlyList<string> Categories { get; init; }

    public required IReadOnlyList<BarSeries> Series { get; init; }

    public IReadOnlyList<ReferenceLine> References { get; init; } = [];

    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>A log10 y axis (bars start at its bottom): for figures whose tail is orders above the median.</summary>
    public bool LogY { get; init; }

    /// <summary>Written above each bar ("0.00" gives 12.34); null: no value labels.</summary>
    public string? ValueFormat { get; init; } = "0.#";

    /// <summary>Frame and y scale Render uses (for the tests).</summary>
    public (Frame Frame, Scale Y) Layout()
    {
        var wrapped = Categories.Select(c => Text.Wrap(c, WrapWidth).Count).DefaultIfEmpty(1).Max();
        var f = new Frame(Title, Subtitle, bottom: 30 + (13 * wrapped) + (XTitle is null ? 0 : 20));
        var values = Series.SelectMany(s => s.Values).OfType<Bar>().SelectMany(b => new[] { b.Value, b.High ?? b.Value })
            .Concat(References.Select(r => r.Y));
        return (f, LogY ? LogScale.Decades(values, f.PlotBottom, f.PlotTop + 14) : LinearScale.Nice(values, f.PlotBottom, f.PlotTop + 14));
    }

    /// <summary>Left edge and width of the bar of series s in category c.</summary>
    public static (double X, double Width) BarBox(Frame f, int categories, int series, int c, int s)
    {
        var group = (f.PlotRight - f.PlotLeft) / Math.Max(1, categories);
        var inner = group * 0.8;
        var width = inner / Math.Max(1, series);
        return (f.PlotLeft + (group * c) + ((group - inner) / 2) + (width * s), width);
    }

    public string Render()
    {
        var (f, y) = Layout();
        var svg = f.Svg;
        f.DrawTitle();
        f.DrawYAxis(y, YTitle, minorLogGrid: LogY);
        var baseY = LogY ? y.From : y.Map(0);
        f.DrawXAxisLine();
        for (var c = 0; c < Categories.Count; c++)
        {
            var (x0, _) = BarBox(f, Categories.Count, 1, c, 0);
            var (_, w) = BarBox(f, Categories.Count, 1, c, 0);
            var lines = Text.Wrap(Categories[c], WrapWidth);
            for (var i = 0; i < lines.Count; i++)
            {
                svg.Text(x0 + (w / 2), f.PlotBottom + 16 + (13 * i), lines[i], 10, "middle");
            }

            for (var s = 0; s < Series.Count; s++)
            {
                if (c >= Series[s].Values.Count || Series[s].Values[c] is not { } bar || !double.IsFinite(bar.Value) || (LogY && bar.Value <= 0))
                {
                    continue;
                }

                var (bx, bw) = BarBox(f, Categories.Count, Series.Count, c, s);
                var top = y.Map(bar.Value);
                var tip = $"{Series[s].Name}, {Categories[c]}: {bar.Value.ToString("0.###", CultureInfo.InvariantCulture)}" +
                    (bar.High is { } h ? $" (whisker {h.ToString("0.###", CultureInfo.InvariantCulture)})" : "");
                svg.Rect(bx + 1, top, bw - 2, baseY - top, Series[s].Color, cls: "bar", tooltip: tip);
                var labelY = top;
                if (bar.High is { } high && double.IsFinite(high) && high >= bar.Value)
                {
                    var hy = y.Map(high);
                    var ly = bar.Low is { } low && double.IsFinite(low) ? y.Map(low) : top;
                    var mid = bx + (bw / 2);
                    svg.Line(mid, ly, mid, hy, "#222", 1.2, cls: "whisker");
                    svg.Line(mid - (bw / 4), hy, mid + (bw / 4), hy, "#222", 1.2);
                    if (bar.Low is not null)
                    {
                        svg.Line(mid - (bw / 4), ly, mid + (bw / 4), ly, "#222", 1.2);
                    }

                    labelY = Math.Min(top, hy);
                }

                if (ValueFormat is not null)
                {
                    // Inside the bar's top when it is tall enough, so the label reads as the bar's, not the whisker's.
                    var label = bar.Value.ToString(ValueFormat, CultureInfo.InvariantCulture);
                    var inside = baseY - top > 16 && bw > 6.5 * label.Length;
                    svg.Text(bx + (bw / 2), inside ? top + 12 : labelY - 4, label, 9.5, "middle", inside ? "#ffffff" : Frame.Muted);
                }
            }
        }

        foreach (var r in References)
        {
            var py = y.Map(r.Y);
            svg.Line(f.PlotLeft, py, f.PlotRight, py, r.Color, 1.5, "6,4", "reference");
        }

        if (XTitle is not null)
        {
            f.DrawXTitle(XTitle, f.Svg.Height - 12);
        }

        var legend = Series.Select(s => new LegendEntry(s.Name, s.Color, LegendKind.Bar))
            .Concat(References.Select(r => new LegendEntry(r.Label, r.Color, LegendKind.Line, "6,4"))).ToList();
        f.DrawLegend(legend, Notes);
        return svg.ToString();
    }

    private int WrapWidth => Math.Max(8, (int)((Frame.Width - Frame.LegendWidth - 20 - Frame.Left) / Math.Max(1, Categories.Count) / 5.6));
}
