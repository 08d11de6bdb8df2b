using System.Globalization;

namespace Loom.Bench;

/// <summary>Summary of one series of wall-clock samples, in milliseconds.</summary>
internal sealed record Stats(int Count, double P50, double P99, double Mean, double Min, double Max)
{
    /// <summary>Nearest-rank percentiles: p99 of 300 samples is the 297th smallest, a value that was really observed.</summary>
    public static Stats Of(IReadOnlyCollection<double> samples)
    {
        if (samples.Count == 0)
        {
            return new Stats(0, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN);
        }

        var sorted = samples.Order().ToArray();
        return new Stats(sorted.Length, Rank(sorted, 0.50), Rank(sorted, 0.99), sorted.Average(), sorted[0], sorted[^1]);
    }

    private static double Rank(double[] sorted, double p) =>
        sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

    public static string Ms(double v) => double.IsNaN(v) ? "-" : v.ToString("0.00", CultureInfo.InvariantCulture);

    public static string Ratio(double loom, double reference) =>
        reference > 0 && !double.IsNaN(loom) ? (loom / reference).ToString("0.00", CultureInfo.InvariantCulture) + "x" : "-";
}
