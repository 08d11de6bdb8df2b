using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Loom.Bench;

/// <summary>The stdout table and the machine-readable JSON of one run.</summary>
internal sealed record Report(string Table, string Json)
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static Report Build(IReadOnlyList<Row> rows, IReadOnlyList<Floor> floors, IReadOnlyList<Probe> probes, BenchOptions options, Machine machine, TimeSpan elapsed)
    {
        var reference = rows[0];
        var refAdd = Stats.Of(reference.Add);
        var refDel = Stats.Of(reference.Del);
        var probeStats = probes.ToDictionary(p => p.Key, p => Stats.Of(p.Samples));
        var t = new StringBuilder();
        var n = rows[0].Add.Count;

        t.AppendLine(CultureInfo.InvariantCulture, $"Wall-clock per exec in ms (spawn from the node namespace -> exit), nearest-rank percentiles, {n} samples per cell");
        t.AppendLine();
        t.AppendLine(CultureInfo.InvariantCulture, $"{"",-32} {"ADD p50",8} {"p99",8} {"mean",8}   {"DEL p50",8} {"p99",8} {"mean",8}");
        foreach (var row in rows)
        {
            var a = Stats.Of(row.Add);
            var d = Stats.Of(row.Del);
            t.AppendLine(CultureInfo.InvariantCulture,
                $"{row.Title,-32} {Stats.Ms(a.P50),8} {Stats.Ms(a.P99),8} {Stats.Ms(a.Mean),8}   {Stats.Ms(d.P50),8} {Stats.Ms(d.P99),8} {Stats.Ms(d.Mean),8}");
        }

        foreach (var f in floors)
        {
            var a = Stats.Of(f.Add);
            var d = Stats.Of(f.Del);
            t.AppendLine(CultureInfo.InvariantCulture,
                $"{f.Title,-32} {Stats.Ms(a.P50),8} {Stats.Ms(a.P99),8} {Stats.Ms(a.Mean),8}   {Stats.Ms(d.P50),8} {Stats.Ms(d.P99),8} {Stats.Ms(d.Mean),8}");
        }

        // Each row against the kernel floor of its plumbing: the gap is the plugin's own cost (exec, runtime, IPAM,
        // config, round trips it could spare); the floor itself is what no plugin can go under.
        var gaps = new List<object>();
        t.AppendLine();
        t.AppendLine(CultureInfo.InvariantCulture, $"{"p50 gap to the kernel floor",-32} {"ADD",8} {"ratio",8}   {"DEL",8} {"ratio",8}   floor");
        foreach (var row in rows)
        {
            var kernel = floors.First(f => f.Routed == row.Routed);
            var (fa, fd) = (Stats.Of(kernel.Add).P50, Stats.Of(kernel.Del).P50);
            var (a, d) = (Stats.Of(row.Add).P50, Stats.Of(row.Del).P50);
            t.AppendLine(CultureInfo.InvariantCulture,
                $"{row.Title,-32} {Stats.Ms(a - fa),8} {Stats.Ratio(a, fa),8}   {Stats.Ms(d - fd),8} {Stats.Ratio(d, fd),8}   {kernel.Key}");
            gaps.Add(new { Row = row.Key, Floor = kernel.Key, AddP50Gap = a - fa, AddP50Ratio = a / fa, DelP50Gap = d - fd, DelP50Ratio = d / fd });
        }

        t.AppendLine();
        t.AppendLine(CultureInfo.InvariantCulture, $"{"loom / reference",-32} {"ADD p50",8} {"ADD p99",8}   {"DEL p50",8} {"DEL p99",8}");
        var ratios = new List<object>();
        foreach (var row in rows.Skip(1))
        {
            var a = Stats.Of(row.Add);
            var d = Stats.Of(row.Del);
            t.AppendLine(CultureInfo.InvariantCulture,
                $"{row.Title,-32} {Stats.Ratio(a.P50, refAdd.P50),8} {Stats.Ratio(a.P99, refAdd.P99),8}   {Stats.Ratio(d.P50, refDel.P50),8} {Stats.Ratio(d.P99, refDel.P99),8}");
            ratios.Add(new
            {
                Row = row.Key,
                AddP50 = a.P50 / refAdd.P50,
                AddP99 = a.P99 / refAdd.P99,
                DelP50 = d.P50 / refDel.P50,
                DelP99 = d.P99 / refDel.P99,
            });
        }

        t.AppendLine("goals: ADD p50 <= 0.5x the reference and <= its floor + 3 ms; DEL p50 <= 1.0x the reference");

        t.AppendLine();
        t.AppendLine(CultureInfo.InvariantCulture, $"{"fixed costs, same exec path",-32} {"p50",8} {"p99",8} {"mean",8}");
        foreach (var p in probes)
        {
            var s = probeStats[p.Key];
            t.AppendLine(CultureInfo.InvariantCulture, $"{p.Title,-32} {Stats.Ms(s.P50),8} {Stats.Ms(s.P99),8} {Stats.Ms(s.Mean),8}");
        }

        var vb = probeStats["version_bridge"];
        var vl = probeStats["version_loom_cni"];
        t.AppendLine(CultureInfo.InvariantCulture, $"{"loom-cni / bridge VERSION",-32} {Stats.Ratio(vl.P50, vb.P50),8} {Stats.Ratio(vl.P99, vb.P99),8}");

        // The spawn floor is paid by every CNI plugin and by no code in it; ratios above it show what the
        // plugins' own work costs. Informational only: the goal is stated on the plain ratios above.
        var floor = probeStats["floor_static"].P50;
        t.AppendLine();
        t.AppendLine(CultureInfo.InvariantCulture, $"{"p50 above the static floor",-32} {"ADD",8} {"ratio",8}   {"DEL",8} {"ratio",8}");
        foreach (var row in rows)
        {
            var a = Stats.Of(row.Add).P50 - floor;
            var d = Stats.Of(row.Del).P50 - floor;
            t.AppendLine(CultureInfo.InvariantCulture,
                $"{row.Title,-32} {Stats.Ms(a),8} {Stats.Ratio(a, refAdd.P50 - floor),8}   {Stats.Ms(d),8} {Stats.Ratio(d, refDel.P50 - floor),8}");
        }

        var warnings = rows.SelectMany(r => r.Warnings.Select(w => $"{r.Title}: {w}")).ToList();
        if (warnings.Count > 0)
        {
            t.AppendLine();
            foreach (var w in warnings)
            {
                t.AppendLine("WARNING " + w);
            }
        }

        t.AppendLine();
        var json = JsonSerializer.Serialize(new
        {
            Date = DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture),
            Commit = Environment.GetEnvironmentVariable("LOOM_BENCH_COMMIT"),
            Machine = new { machine.Nproc, machine.Cpu, machine.Kernel, LoadAverageAtStart = machine.LoadAverage, LoadAverageAtEnd = Machine.Describe().LoadAverage, Runtime = RuntimeInformation.FrameworkDescription },
            Reference = new { Dir = Loom.Testing.CniRunner.ReferenceDir, Version = Environment.GetEnvironmentVariable("LOOM_BENCH_REF_VERSION") },
            options.Pods,
            options.Rounds,
            options.Warmup,
            Unit = "ms",
            Percentiles = "nearest-rank",
            Measured = "wall-clock of one CniRunner.Exec (as a runtime: EPIPE on stdin tolerated): a thread enters the node netns, spawns the plugin with CNI_* env, writes the config to stdin, waits for exit",
            TotalSeconds = Math.Round(elapsed.TotalSeconds, 1),
            Rows = rows.Select(r => new
            {
                r.Key,
                r.Title,
                r.Plugin,
                r.Config,
                Add = Stats.Of(r.Add),
                Del = Stats.Of(r.Del),
                AddP50ByRound = ByRound(r.Add, options.Pods),
                DelP50ByRound = ByRound(r.Del, options.Pods),
                AddSamples = Round3(r.Add),
                DelSamples = Round3(r.Del),
                r.Warnings,
            }),
            Floors = floors.Select(f => new
            {
                f.Key,
                f.Title,
                f.Routed,
                Add = Stats.Of(f.Add),
                Del = Stats.Of(f.Del),
                AddP50ByRound = ByRound(f.Add, options.Pods),
                DelP50ByRound = ByRound(f.Del, options.Pods),
                AddSamples = Round3(f.Add),
                DelSamples = Round3(f.Del),
            }),
            FloorGaps = gaps,
            Ratios = ratios,
            Probes = probes.Select(p => new { p.Key, p.Title, p.Path, Stats = probeStats[p.Key], Samples = Round3(p.Samples) }),
        }, JsonOptions);
        return new Report(t.ToString(), json + "\n");
    }

    private static double[] ByRound(List<double> samples, int pods) =>
        samples.Chunk(pods).Select(c => Stats.Of(c).P50).ToArray();

    private static double[] Round3(List<double> samples) => samples.Select(s => Math.Round(s, 3)).ToArray();
}
