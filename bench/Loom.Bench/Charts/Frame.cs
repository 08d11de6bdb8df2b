namespace Loom.Bench.Charts;

/// <summary>One legend entry: a line (with its dash), a bar swatch, or a marker symbol.</summary>
internal sealed record LegendEntry(string Name, string Color, LegendKind Kind = LegendKind.Line, string? Dash = null);

internal enum LegendKind
{
    Line,
    Bar,
    Cross,
}

/// <summary>
/// What every chart shares: the canvas, a title and subtitle lines (date, commit, machine), the plot area, the y
/// axis with its grid, and the legend on the right. The charts draw their data inside <see cref="PlotLeft"/> ..
/// <see cref="PlotRight"/>, <see cref="PlotTop"/> .. <see cref="PlotBottom"/>.
/// </summary>
internal sealed class Frame
{
    public const double Width = 860;
    public const double LegendWidth = 230;
    public const double Left = 78;
    public const double TitleSize = 16;
    public const double SmallSize = 11;
    public const string Axis = "#444";
    public const string Grid = "#e4e4e4";
    public const string Muted = "#666";

    public Frame(string title, IReadOnlyList<string> subtitle, double plotHeight = 300, double bottom = 58)
    {
        Title = title;
        Subtitle = subtitle;
        PlotTop = 40 + (16 * subtitle.Count);
        PlotBottom = PlotTop + plotHeight;
        Svg = new Svg(Width, PlotBottom + bottom);
    }

    public string Title { get; }

    public IReadOnlyList<string> Subtitle { get; }

    public Svg Svg { get; }

    public double PlotLeft { get; } = Left;

    public double PlotRight { get; } = Width - LegendWidth - 20;

    public double PlotTop { get; }

    public double PlotBottom { get; }

    public void DrawTitle()
    {
        Svg.Text(PlotLeft - 60, 24, Title, TitleSize, weight: "bold");
        for (var i = 0; i < Subtitle.Count; i++)
        {
            Svg.Text(PlotLeft - 60, 42 + (16 * i), Subtitle[i], SmallSize, fill: Muted);
        }
    }

    /// <summary>The y axis: grid lines and labels at the scale's ticks, and its title turned vertical.</summary>
    public void DrawYAxis(Scale y, string title, bool minorLogGrid = false)
    {
        foreach (var t in y.Ticks())
        {
            var py = y.Map(t);
            Svg.Line(PlotLeft, py, PlotRight, py, Grid);
            Svg.Line(PlotLeft - 5, py, PlotLeft, py, Axis);
            Svg.Text(PlotLeft - 8, py + 4, Scale.Label(t), SmallSize, "end");
        }

        if (minorLogGrid && y is LogScale)
        {
            // Light lines at 2..9 x 10^k so a log axis can be read between decades.
            for (var d = y.Min; d < y.Max; d *= 10)
            {
                for (var m = 2; m <= 9; m++)
                {
                    var py = y.Map(d * m);
                    Svg.Line(PlotLeft, py, PlotRight, py, "#f3f3f3");
                }
            }
        }

        Svg.Line(PlotLeft, PlotTop, PlotLeft, PlotBottom, Axis);
        Svg.Text(PlotLeft - 58, (PlotTop + PlotBottom) / 2, title, 12, "middle", rotate: -90);
    }

    public void DrawXAxisLine() => Svg.Line(PlotLeft, PlotBottom, PlotRight, PlotBottom, Axis);

    public void DrawXTitle(string title, double? y = null) => Svg.Text((PlotLeft + PlotRight) / 2, y ?? PlotBottom + 44, title, 12, "middle");

    /// <summary>The legend to the right of the plot; long names wrap.</summary>
    public void DrawLegend(IReadOnlyList<LegendEntry> entries, IReadOnlyList<string>? notes = null)
    {
        var x = PlotRight + 20;
        var y = PlotTop + 6;
        foreach (var e in entries)
        {
            switch (e.Kind)
            {
                case LegendKind.Bar:
                    Svg.Rect(x, y - 9, 22, 11, e.Color);
                    break;
                case LegendKind.Cross:
                    Cross(Svg, x + 11, y - 4, e.Color);
                    break;
                default:
                    Svg.Line(x, y - 4, x + 22, y - 4, e.Color, 2.5, e.Dash);
                    break;
            }

            var lines = Text.Wrap(e.Name, 28);
            for (var i = 0; i < lines.Count; i++)
            {
                Svg.Text(x + 28, y + (i * 13), lines[i], SmallSize);
            }

            y += 8 + (13 * lines.Count);
        }

        foreach (var note in notes ?? [])
        {
            y += 4;
            foreach (var line in Text.Wrap(note, 34))
            {
                Svg.Text(x, y, line, 10, fill: Muted);
                y += 12;
            }
        }
    }

    /// <summary>The "x" drawn where a measurement did not finish (a killed sync).</summary>
    public static void Cross(Svg svg, double cx, double cy, string color)
    {
        svg.Line(cx - 5, cy - 5, cx + 5, cy + 5, color, 2.5, cls: "cross");
        svg.Line(cx - 5, cy + 5, cx + 5, cy - 5, color, 2.5, cls: "cross");
    }
}

internal static class Text
{
    /// <summary>Greedy word wrap to at most width characters a line (a longer word is cut into pieces of width).</summary>
    public static IReadOnlyList<string> Wrap(string text, int width)
    {
        var lines = new List<string>();
        var line = "";
        foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries).SelectMany(w => w.Chunk(width).Select(c => new string(c))))
        {
            if (line.Length > 0 && line.Length + 1 + word.Length > width)
            {
                lines.Add(line);
                line = word;
            }
            else
            {
                line = line.Length == 0 ? word : line + " " + word;
            }
        }

        if (line.Length > 0 || lines.Count == 0)
        {
            lines.Add(line);
        }

        return lines;
    }
}
