using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security;
using System.Text;

[assembly: InternalsVisibleTo("Loom.Bench.Tests")]

namespace Loom.Bench.Charts;

/// <summary>
/// A minimal SVG writer: plain strings, every text and attribute value escaped, numbers in the invariant culture
/// with two decimals (enough for pixels, and the output is stable from run to run).
/// </summary>
internal sealed class Svg
{
    private readonly StringBuilder body = new();

    public Svg(double width, double height)
    {
        Width = width;
        Height = height;
    }

    public double Width { get; }

    public double Height { get; }

    public static string Num(double v) => Math.Round(v, 2).ToString("0.##", CultureInfo.InvariantCulture);

    public static string Escape(string text) => SecurityElement.Escape(text) ?? "";

    public void Line(double x1, double y1, double x2, double y2, string stroke, double width = 1, string? dash = null, string? cls = null) =>
        body.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Num(x1)}\" y1=\"{Num(y1)}\" x2=\"{Num(x2)}\" y2=\"{Num(y2)}\" stroke=\"{Escape(stroke)}\" stroke-width=\"{Num(width)}\"{Dash(dash)}{Class(cls)}/>\n");

    public void Rect(double x, double y, double w, double h, string fill, string? stroke = null, string? cls = null, string? tooltip = null)
    {
        body.Append(CultureInfo.InvariantCulture, $"<rect x=\"{Num(x)}\" y=\"{Num(y)}\" width=\"{Num(Math.Max(0, w))}\" height=\"{Num(Math.Max(0, h))}\" fill=\"{Escape(fill)}\"");
        if (stroke is not null)
        {
            body.Append(CultureInfo.InvariantCulture, $" stroke=\"{Escape(stroke)}\"");
        }

        body.Append(Class(cls));
        AppendTooltipAndClose(tooltip, "rect");
    }

    public void Circle(double cx, double cy, double r, string fill, string? stroke = null, string? tooltip = null)
    {
        body.Append(CultureInfo.InvariantCulture, $"<circle cx=\"{Num(cx)}\" cy=\"{Num(cy)}\" r=\"{Num(r)}\" fill=\"{Escape(fill)}\"");
        if (stroke is not null)
        {
            body.Append(CultureInfo.InvariantCulture, $" stroke=\"{Escape(stroke)}\" stroke-width=\"1.5\"");
        }

        AppendTooltipAndClose(tooltip, "circle");
    }

    public void Polyline(IReadOnlyList<(double X, double Y)> points, string stroke, double width = 2, string? dash = null, string? cls = null)
    {
        var pts = string.Join(' ', points.Select(p => Num(p.X) + "," + Num(p.Y)));
        body.Append(CultureInfo.InvariantCulture, $"<polyline points=\"{pts}\" fill=\"none\" stroke=\"{Escape(stroke)}\" stroke-width=\"{Num(width)}\"{Dash(dash)}{Class(cls)}/>\n");
    }

    /// <param name="anchor">start, middle or end.</param>
    /// <param name="rotate">Degrees around the anchor point (-90 for a vertical axis title).</param>
    public void Text(double x, double y, string text, double size = 12, string anchor = "start", string fill = "#222", string weight = "normal", double rotate = 0)
    {
        var transform = rotate == 0 ? "" : $" transform=\"rotate({Num(rotate)} {Num(x)} {Num(y)})\"";
        body.Append(CultureInfo.InvariantCulture, $"<text x=\"{Num(x)}\" y=\"{Num(y)}\" font-size=\"{Num(size)}\" text-anchor=\"{Escape(anchor)}\" fill=\"{Escape(fill)}\" font-weight=\"{Escape(weight)}\"{transform}>{Escape(text)}</text>\n");
    }

    public override string ToString() =>
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" +
        $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Num(Width)}\" height=\"{Num(Height)}\" viewBox=\"0 0 {Num(Width)} {Num(Height)}\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n" +
        $"<rect x=\"0\" y=\"0\" width=\"{Num(Width)}\" height=\"{Num(Height)}\" fill=\"#ffffff\"/>\n" +
        body +
        "</svg>\n";

    private static string Dash(string? dash) => dash is null ? "" : $" stroke-dasharray=\"{Escape(dash)}\"";

    private static string Class(string? cls) => cls is null ? "" : $" class=\"{Escape(cls)}\"";

    private void AppendTooltipAndClose(string? tooltip, string element)
    {
        if (tooltip is null)
        {
            body.Append("/>\n");
        }
        else
        {
            body.Append(CultureInfo.InvariantCulture, $"><title>{Escape(tooltip)}</title></{element}>\n");
        }
    }
}
