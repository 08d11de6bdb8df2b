using System.Globalization;

namespace Loom.Bench.Charts;

/// <summary>Maps a data value to a pixel coordinate, and picks the ticks of its axis.</summary>
internal abstract class Scale(double min, double max, double from, double to)
{
    public double Min { get; } = min;

    public double Max { get; } = max;

    /// <summary>Pixel of Min (the left edge, or the bottom edge for a y axis, whose pixels grow downwards).</summary>
    public double From { get; } = from;

    public double To { get; } = to;

    public abstract double Map(double value);

    public abstract IReadOnlyList<double> Ticks();

    /// <summary>A tick label: 1, 2.5, 1000, 10k, 0.5 ... short and culture-free.</summary>
    public static string Label(double v)
    {
        var a = Math.Abs(v);
        if (a >= 1e6 && a % 1e5 == 0)
        {
            return (v / 1e6).ToString("0.#", CultureInfo.InvariantCulture) + "M";
        }

        if (a >= 1e4 && a % 100 == 0)
        {
            return (v / 1e3).ToString("0.#", CultureInfo.InvariantCulture) + "k";
        }

        return v.ToString(a >= 1 || a == 0 ? "0.##" : "0.###", CultureInfo.InvariantCulture);
    }
}

/// <summary>A linear scale whose domain is widened to "nice" ticks (1, 2, 5 x 10^k steps).</summary>
internal sealed class LinearScale : Scale
{
    private readonly double step;

    private LinearScale(double min, double max, double step, double from, double to)
        : base(min, max, from, to) => this.step = step;

    /// <summary>A scale covering the values (and zero when zero is asked for), rounded out to about five ticks.</summary>
    public static LinearScale Nice(IEnumerable<double> values, double from, double to, bool includeZero = true, int ticks = 5)
    {
        var finite = values.Where(double.IsFinite).ToList();
        var lo = finite.Count == 0 ? 0 : finite.Min();
        var hi = finite.Count == 0 ? 1 : finite.Max();
        if (includeZero)
        {
            lo = Math.Min(lo, 0);
            hi = Math.Max(hi, 0);
        }

        if (hi - lo <= 0)
        {
            hi = lo + (lo == 0 ? 1 : Math.Abs(lo));
        }

        var step = NiceStep((hi - lo) / ticks);
        return new LinearScale(Math.Floor(lo / step) * step, Math.Ceiling(hi / step) * step, step, from, to);
    }

    /// <summary>The smallest of 1, 2, 2.5, 5 x 10^k at least raw.</summary>
    public static double NiceStep(double raw)
    {
        var magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        foreach (var m in new[] { 1, 2, 2.5, 5, 10 })
        {
            if (m * magnitude >= raw * (1 - 1e-9))
            {
                return m * magnitude;
            }
        }

        return 10 * magnitude;
    }

    public override double Map(double value) => From + ((value - Min) / (Max - Min) * (To - From));

    public override IReadOnlyList<double> Ticks()
    {
        var ticks = new List<double>();
        var n = (int)Math.Round((Max - Min) / step);
        for (var i = 0; i <= n; i++)
        {
            // Rounded to the step's precision so 0.1 + 0.2 prints as 0.3.
            ticks.Add(Math.Round(Min + (i * step), 10));
        }

        return ticks;
    }
}

/// <summary>A base-10 log scale from the power of ten at or below the smallest value to the one at or above the largest.</summary>
internal sealed class LogScale : Scale
{
    private LogScale(double min, double max, double from, double to)
        : base(min, max, from, to)
    {
    }

    /// <summary>Non-positive values cannot be drawn on a log axis and are ignored here (the charts leave them out).</summary>
    public static LogScale Decades(IEnumerable<double> values, double from, double to)
    {
        var positive = values.Where(v => double.IsFinite(v) && v > 0).ToList();
        var lo = positive.Count == 0 ? 1 : Math.Pow(10, Math.Floor(Math.Log10(positive.Min()) + 1e-9));
        var hi = positive.Count == 0 ? 10 : Math.Pow(10, Math.Ceiling(Math.Log10(positive.Max()) - 1e-9));
        if (hi <= lo)
        {
            hi = lo * 10;
        }

        return new LogScale(lo, hi, from, to);
    }

    public override double Map(double value) =>
        From + ((Math.Log10(value) - Math.Log10(Min)) / (Math.Log10(Max) - Math.Log10(Min)) * (To - From));

    /// <summary>Every power of ten; with fewer than three decades also 2x and 5x, so a short axis still has ticks.</summary>
    public override IReadOnlyList<double> Ticks()
    {
        var ticks = new List<double>();
        var decades = (int)Math.Round(Math.Log10(Max / Min));
        for (var d = 0; d <= decades; d++)
        {
            var p = Min * Math.Pow(10, d);
            ticks.Add(Round(p));
            if (decades < 3 && d < decades)
            {
                ticks.Add(Round(p * 2));
                ticks.Add(Round(p * 5));
            }
        }

        return ticks;
    }

    public static bool IsDecade(double v) => Math.Abs(Math.Log10(v) - Math.Round(Math.Log10(v))) < 1e-9;

    private static double Round(double v) => double.Parse(v.ToString("G12", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
}
