using System.Globalization;
using System.Xml.Linq;
using Loom.Bench.Charts;

namespace Loom.Bench.Tests;

public class SvgTests
{
    private static readonly XNamespace Ns = "http://www.w3.org/2000/svg";

    [Fact]
    public void Text_and_attributes_are_escaped_and_the_document_parses()
    {
        var svg = new Svg(100, 50);
        var nasty = "a < b && c > \"d\" 'e'";
        svg.Text(1, 2, nasty);
        svg.Rect(0, 0, 10, 10, "#fff\"/><script/>", tooltip: nasty);
        var doc = XDocument.Parse(svg.ToString());
        Assert.Equal(nasty, doc.Descendants(Ns + "text").Single().Value);
        Assert.Equal(nasty, doc.Descendants(Ns + "title").Single().Value);
        Assert.Empty(doc.Descendants("script"));
        Assert.Empty(doc.Descendants(Ns + "script"));
    }

    [Fact]
    public void Numbers_use_the_invariant_culture_whatever_the_current_one()
    {
        var saved = CultureInfo.CurrentCulture;
        try
        {
            // The build is globalization-invariant, so a comma-decimal culture is made by hand rather than looked up.
            var comma = (CultureInfo)CultureInfo.InvariantCulture.Clone();
            comma.NumberFormat.NumberDecimalSeparator = ",";
            CultureInfo.CurrentCulture = comma;
            var svg = new Svg(100.5, 50);
            svg.Line(1.25, 2, 3, 4, "#000");
            var line = XDocument.Parse(svg.ToString()).Descendants(Ns + "line").Single();
            Assert.Equal("1.25", line.Attribute("x1")!.Value);
        }
        finally
        {
            CultureInfo.CurrentCulture = saved;
        }
    }

    internal static XDocument Parse(string svg) => XDocument.Parse(svg);

    internal static IEnumerable<XElement> WithClass(XDocument doc, string element, string cls) =>
        doc.Descendants(Ns + element).Where(e => (string?)e.Attribute("class") == cls);

    internal static double Attr(XElement e, string name) => double.Parse(e.Attribute(name)!.Value, CultureInfo.InvariantCulture);

    internal static List<(double X, double Y)> PolylinePoints(XElement polyline) =>
        polyline.Attribute("points")!.Value.Split(' ').Select(p => p.Split(','))
            .Select(p => (double.Parse(p[0], CultureInfo.InvariantCulture), double.Parse(p[1], CultureInfo.InvariantCulture))).ToList();
}
