using Loom.Bench.Charts;
using static Loom.Bench.Tests.SvgTests;

namespace Loom.Bench.Tests;

public class ChartTests
{
    private static LineChart Lines(bool logY = false, params LineSeries[] series) => new()
    {
        Title = "t & <title>",
        Subtitle = ["when, commit, machine"],
        XTitle = "N",
        YTitle = "conn/s",
        LogX = true,
        LogY = logY,
        Series = series,
    };

    [Fact]
    public void Line_chart_draws_one_polyline_per_series_through_its_mapped_points()
    {
        var a = new LineSeries("iptables", "#d62728", [(1, 100), (1000, 250), (10000, 400)]);
        var b = new LineSeries("ebpf", "#1f77b4", [(1, 300), (1000, 310), (10000, 305)], "5,4");
        var chart = Lines(false, a, b);
        var doc = Parse(chart.Render());
        var lines = WithClass(doc, "polyline", "series").ToList();
        Assert.Equal(2, lines.Count);

        var (x, y) = chart.Scales(new Frame(chart.Title, chart.Subtitle));
        for (var i = 0; i < 2; i++)
        {
            var expected = new[] { a, b }[i].Points.Select(p => (x.Map(p.X), y.Map(p.Y))).ToList();
            var actual = PolylinePoints(lines[i]);
            Assert.Equal(expected.Count, actual.Count);
            foreach (var (e, g) in expected.Zip(actual))
            {
                Assert.Equal(e.Item1, g.X, 1);
                Assert.Equal(e.Item2, g.Y, 1);
            }
        }

        // Larger value, higher on the page (smaller y); log x: 1000 sits three quarters of the way from 1 to 10000.
        Assert.True(y.Map(400) < y.Map(100));
        Assert.Equal(0.75, (x.Map(1000) - x.Map(1)) / (x.Map(10000) - x.Map(1)), 6);
        Assert.Equal("t & <title>", doc.Descendants().First(e => e.Name.LocalName == "text").Value);
    }

    [Fact]
    public void A_missing_value_breaks_the_line_instead_of_bridging_it()
    {
        var s = new LineSeries("nftables", "#ff7f0e", [(1, 10), (10, 20), (100, double.NaN), (1000, 40), (10000, 50)]);
        var doc = Parse(Lines(false, s).Render());
        var lines = WithClass(doc, "polyline", "series").ToList();
        Assert.Equal(2, lines.Count);
        Assert.Equal([2, 2], lines.Select(l => PolylinePoints(l).Count));
    }

    [Fact]
    public void A_series_ending_in_a_killed_cell_is_drawn_up_to_it_and_zero_is_left_out_of_a_log_axis()
    {
        var s = new LineSeries("iptables", "#d62728", [(1, 20), (1000, 1282), (10000, double.NaN)]);
        var z = new LineSeries("zero", "#000", [(1, 0), (1000, 5), (10000, 6)]);
        var chart = Lines(true, s, z) is var c ? new LineChart
        {
            Title = c.Title, XTitle = c.XTitle, YTitle = c.YTitle, LogX = true, LogY = true, Series = c.Series,
            Markers = [new LineMarker(10000, 60000, "killed > 60 s", "#d62728")], MarkerLegend = "killed",
        } : null!;
        var doc = Parse(chart.Render());
        var lines = WithClass(doc, "polyline", "series").ToList();
        Assert.Equal([2, 2], lines.Select(l => PolylinePoints(l).Count));
        // The marker is two strokes of an x, and the axis reaches up to it.
        Assert.Equal(2 * 2, WithClass(doc, "line", "cross").Count());
        var (_, y) = chart.Scales(new Frame(chart.Title, chart.Subtitle));
        Assert.True(y.Max >= 60000);
        Assert.True(y.Min > 0);
    }

    [Fact]
    public void Bar_chart_draws_a_bar_per_value_from_zero_to_its_mapped_top_and_whiskers_where_given()
    {
        var chart = new BarChart
        {
            Title = "cni",
            YTitle = "ms",
            Categories = ["reference bridge + host-local", "loom-cni + built-in IPAM", "floor: in-process netlink"],
            Series =
            [
                new BarSeries("ADD", "#1f77b4", [new Bar(15, 28), new Bar(9, 12), new Bar(3)]),
                new BarSeries("DEL", "#ff7f0e", [new Bar(26, 37), null, new Bar(20, 22)]),
            ],
            References = [new ReferenceLine(2.5, "floor", "#555")],
        };
        var doc = Parse(chart.Render());
        var bars = WithClass(doc, "rect", "bar").ToList();
        Assert.Equal(5, bars.Count);
        Assert.Equal(4, WithClass(doc, "line", "whisker").Count()); // every bar with a High: not the 3 ms one
        Assert.Single(WithClass(doc, "line", "reference"));

        var (f, y) = chart.Layout();
        var first = bars[0];
        Assert.Equal(y.Map(15), Attr(first, "y"), 1);
        Assert.Equal(y.Map(0), Attr(first, "y") + Attr(first, "height"), 1);
        // Heights are proportional to the values.
        Assert.Equal(26.0 / 15, Attr(bars[1], "height") / Attr(first, "height"), 2);
        // The y axis covers the highest whisker.
        Assert.True(y.Max >= 37);
        // Bars of a group sit side by side inside the plot, groups left to right.
        var (x0, w) = BarChart.BarBox(f, 3, 2, 0, 0);
        var (x1, _) = BarChart.BarBox(f, 3, 2, 0, 1);
        var (x2, _) = BarChart.BarBox(f, 3, 2, 1, 0);
        Assert.Equal(x0 + w, x1, 6);
        Assert.True(x2 > x1 + w);
        Assert.True(BarChart.BarBox(f, 3, 2, 2, 1) is var (xl, wl) && xl + wl <= f.PlotRight);
    }
}
