using System.Globalization;
using System.Text.Json;

namespace Loom.Bench.Charts;

/// <summary>Reading the benches' JSON: numbers may be "NaN" strings (AllowNamedFloatingPointLiterals) or null.</summary>
internal static class ChartJson
{
    public static JsonElement? Prop(this JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    /// <summary>The number at a path of property names, NaN when absent, null or not a number.</summary>
    public static double Num(this JsonElement e, params string[] path)
    {
        JsonElement? cur = e;
        foreach (var name in path)
        {
            cur = cur?.Prop(name);
        }

        return cur switch
        {
            { ValueKind: JsonValueKind.Number } n => n.GetDouble(),
            { ValueKind: JsonValueKind.String } s when double.TryParse(s.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
            _ => double.NaN,
        };
    }

    public static string Str(this JsonElement e, string name, string fallback = "?") =>
        e.Prop(name) is { ValueKind: JsonValueKind.String } s ? s.GetString() ?? fallback : fallback;

    public static IEnumerable<JsonElement> Items(this JsonElement e, string name) =>
        e.Prop(name) is { ValueKind: JsonValueKind.Array } a ? a.EnumerateArray() : [];

    public static IEnumerable<double> Nums(this JsonElement e, string name) =>
        e.Items(name).Select(v => v.Num());

    /// <summary>"2026-12-01 03:41 UTC" from an ISO date; the text itself when it does not parse.</summary>
    public static string Date(string iso) =>
        DateTime.TryParse(iso, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var d)
            ? d.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) + " UTC"
            : iso;

    /// <summary>The subtitle's first line: when, which commit, on what machine.</summary>
    public static string Provenance(string date, string commit, JsonElement machine, string? runtime = null)
    {
        var cpus = machine.Num("nproc");
        var cpu = machine.Str("cpu", "");
        var what = double.IsFinite(cpus) ? $"{cpus.ToString(CultureInfo.InvariantCulture)} CPUs {cpu}".TrimEnd() : cpu;
        var kernel = machine.Str("kernel", "");
        var parts = new[] { Date(date), "commit " + commit, what, kernel.Length > 0 ? "kernel " + kernel : "", runtime ?? machine.Str("runtime", "") };
        return string.Join(", ", parts.Where(p => p.Length > 0));
    }
}
