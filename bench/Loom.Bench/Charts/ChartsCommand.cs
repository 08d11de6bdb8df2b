using System.Text.Json;

namespace Loom.Bench.Charts;

/// <summary>
/// `Loom.Bench charts [--in DIR] [--out DIR]` (bench/charts.sh): the newest JSON of each kind in DIR (the file
/// names carry a sortable UTC date-time: kind-yyyyMMdd-HHmmss.json) drawn as SVG; a kind with no JSON is skipped.
/// </summary>
internal static class ChartsCommand
{
    private static readonly (string Kind, Func<JsonElement, IReadOnlyList<(string File, string Svg)>> Build)[] Kinds =
    [
        ("cni", CniChart.Build),
        ("services", ServicesCharts.Build),
        ("datapath", DatapathCharts.Build),
    ];

    public static int Run(string[] args)
    {
        string inDir = "out/bench", outDir = "bench/charts";
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--in" when i + 1 < args.Length:
                    inDir = args[++i];
                    break;
                case "--out" when i + 1 < args.Length:
                    outDir = args[++i];
                    break;
                default:
                    Console.Error.WriteLine($"charts: unknown option {args[i]} (--in DIR, --out DIR)");
                    return 2;
            }
        }

        Directory.CreateDirectory(outDir);
        var failed = false;
        foreach (var (kind, build) in Kinds)
        {
            var newest = Newest(inDir, kind);
            if (newest is null)
            {
                Console.WriteLine($"charts: {kind}: no {kind}-*.json in {inDir}, skipped");
                continue;
            }

            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(newest));
                foreach (var (file, svg) in build(doc.RootElement))
                {
                    var path = Path.Combine(outDir, file);
                    File.WriteAllText(path, svg);
                    Console.WriteLine($"charts: {kind}: {path} from {newest}");
                }
            }
            catch (JsonException e)
            {
                Console.Error.WriteLine($"charts: {kind}: cannot read {newest}: {e.Message}");
                failed = true;
            }
        }

        return failed ? 1 : 0;
    }

    /// <summary>The newest kind-yyyyMMdd-HHmmss.json by its name's date (the name sorts by time), null if none.</summary>
    public static string? Newest(string dir, string kind) =>
        !Directory.Exists(dir) ? null :
        Directory.EnumerateFiles(dir, kind + "-*.json")
            .Where(f => IsDated(Path.GetFileNameWithoutExtension(f)[(kind.Length + 1)..]))
            .OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal)
            .LastOrDefault();

    /// <summary>yyyyMMdd-HHmmss: so services-part-*.json or a hand-named file is not taken for a run.</summary>
    public static bool IsDated(string s) =>
        s.Length == 15 && s[8] == '-' && s.Remove(8, 1).All(char.IsAsciiDigit);
}
