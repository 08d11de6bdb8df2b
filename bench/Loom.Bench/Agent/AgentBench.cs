using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Loom.Bench.LabScale;

namespace Loom.Bench.Agent;

/// <summary>
/// <c>Loom.Bench agent</c> (bench/agent.sh): the node agent's own cost. For each service backend and each agent build
/// (aot: out/bin/loom, NativeAOT as shipped; jit: the JIT apphost of the same commit that <c>dotnet build</c> leaves
/// in src/Loom.Cli/bin, the baseline), a 1-node lab whose agent is that binary: RSS, peak RSS and idle CPU with no
/// Service of the bench and with N. See bench/README.md.
/// </summary>
internal static class AgentBench
{
    public const string Base = "lba";

    /// <summary>The issue's goals: RSS at N=10,000 (eBPF, iptables) and idle CPU.</summary>
    public const double GoalRssMb = 80;
    public const double GoalIdleCpuPercent = 0.1;

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static int Run(string[] args)
    {
        if (!BenchHost.TryParse("agent", args, AgentBenchOptions.Parse, out var options))
        {
            return 2;
        }

        if (!BenchHost.IsRoot("agent", "the lab creates network namespaces"))
        {
            return 1;
        }

        var binaries = options.Variants.ToDictionary(v => v, Binary, StringComparer.Ordinal);
        foreach (var (variant, path) in binaries)
        {
            if (!File.Exists(path))
            {
                Console.Error.WriteLine($"bench agent: the {variant} agent {path} is missing; run `make build`");
                return 1;
            }
        }

        return BenchHost.RunCancellable(ct => RunAsync(options, binaries, ct));
    }

    /// <summary>aot: the published loom (LOOM_BIN_DIR); jit: the apphost <c>dotnet build</c> leaves beside its assemblies (LOOM_JIT_BIN overrides).</summary>
    private static string Binary(string variant) => variant == "aot"
        ? LoomCli.Loom
        : Environment.GetEnvironmentVariable("LOOM_JIT_BIN") is { Length: > 0 } jit
            ? jit
            : Path.GetFullPath("src/Loom.Cli/bin/Release/net10.0/linux-x64/loom");

    private static async Task<int> RunAsync(AgentBenchOptions options, Dictionary<string, string> binaries, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        var machine = BenchHost.Header("Loom agent benchmark");
        Console.WriteLine($"  workload  per backend and agent build: a 1-node lab (sqlite store, no cluster DNS); idle {options.IdleSeconds} s; " +
            $"{options.Services} Services written to the store ({AgentRun.WithEndpoints(options.Services)} selecting 2 pods); idle {options.IdleSeconds} s");
        Console.WriteLine($"  agents    {string.Join(", ", binaries.Select(b => $"{b.Key} {b.Value}"))}");
        var gcEnv = GcEnvironment();
        if (gcEnv.Count > 0)
        {
            // The agents inherit the bench's environment: GC settings given to it apply to both builds.
            Console.WriteLine($"  gc env    {string.Join(' ', gcEnv.Select(e => $"{e.Key}={e.Value}"))}");
        }
        foreach (var swept in await LabBench.SweepStaleAsync(Base, ct).ConfigureAwait(false))
        {
            Console.WriteLine($"  swept     {swept}");
        }

        var results = new List<AgentResult>();
        try
        {
            foreach (var backend in options.Backends)
            {
                foreach (var variant in options.Variants)
                {
                    results.Add(await AgentRun.RunAsync(backend, variant, binaries[variant], options, ct).ConfigureAwait(false));
                }
            }
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine();
            Console.Error.WriteLine("bench agent: interrupted; the lab was taken down");
            return 130;
        }

        var end = Machine.Describe();
        Console.WriteLine();
        Console.Write(Table(results, options, machine, end));
        var outPath = options.Out ?? Path.Combine(Environment.GetEnvironmentVariable("LOOM_BENCH_OUT_DIR") ?? "out/bench", $"agent-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
        var json = JsonSerializer.Serialize(new
        {
            Benchmark = "agent",
            Date = DateTime.UtcNow,
            Commit = Environment.GetEnvironmentVariable("LOOM_BENCH_COMMIT"),
            Machine = machine,
            LoadEnd = end.LoadAverage,
            ElapsedS = Math.Round(total.Elapsed.TotalSeconds, 1),
            Options = new
            {
                options.Services,
                Backends = options.Backends.Select(LabBenchOptions.Name),
                options.Variants,
                Binaries = binaries,
                GcEnvironment = gcEnv,
                options.IdleSeconds,
                options.TimeoutSeconds,
                ServicesWithEndpoints = AgentRun.WithEndpoints(options.Services),
                GoalRssMb,
                GoalIdleCpuPercent,
            },
            Results = results,
        }, JsonOptions);
        await File.WriteAllTextAsync(outPath, json, CancellationToken.None).ConfigureAwait(false);
        Console.WriteLine($"results: {outPath}   total run time {total.Elapsed.TotalSeconds:0} s");
        return results.Any(r => r.Status == "error") ? 1 : 0;
    }

    /// <summary>DOTNET_GC* / DOTNET_gc* variables the agents inherit (both builds read them).</summary>
    private static SortedDictionary<string, string> GcEnvironment()
    {
        var env = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            if (e.Key is string k && k.StartsWith("DOTNET_", StringComparison.Ordinal) && k[7..].StartsWith("gc", StringComparison.OrdinalIgnoreCase))
            {
                env[k] = e.Value as string ?? "";
            }
        }

        return env;
    }

    private static string Table(List<AgentResult> results, AgentBenchOptions options, Machine start, Machine end)
    {
        var t = new StringBuilder();
        t.AppendLine(CultureInfo.InvariantCulture, $"agent memory (MB: RSS at the start and end of the idle window, VmHWM peak) and idle CPU (% of one CPU over {options.IdleSeconds} s), with the lab's own Services only and with {options.Services} more");
        t.AppendLine(CultureInfo.InvariantCulture, $"(goal: RSS <= {GoalRssMb:0} MB at 10,000 on ebpf and iptables, idle CPU <= {GoalIdleCpuPercent}%; load average {start.LoadAverage} at start, {end.LoadAverage} at end)");
        t.AppendLine();
        t.AppendLine(CultureInfo.InvariantCulture, $"{"backend",-9} {"agent",-5} {"up s",5} | {"N=0 rss",8} {"end",6} {"peak",6} {"cpu%",6} | {"N rss",8} {"end",6} {"peak",6} {"cpu%",6} {"sync s",7} | {"load at start",-15} status");
        foreach (var r in results)
        {
            t.AppendLine(CultureInfo.InvariantCulture,
                $"{r.Backend,-9} {r.Variant,-5} {F(r.UpS, "0.0"),5} | {Phase(r.Empty)} | {Phase(r.Loaded)} {F(r.CaughtUpS, "0.0"),7} | {r.LoadStart,-15} {r.Status}");
        }

        t.AppendLine();
        t.AppendLine("aot / jit (lower is better):");
        foreach (var backend in results.Select(r => r.Backend).Distinct(StringComparer.Ordinal))
        {
            var aot = results.FirstOrDefault(r => r.Backend == backend && r.Variant == "aot");
            var jit = results.FirstOrDefault(r => r.Backend == backend && r.Variant == "jit");
            if (aot is null || jit is null)
            {
                continue;
            }

            t.AppendLine(CultureInfo.InvariantCulture,
                $"{backend,-9} RSS N=0 {Ratio(aot.Empty?.RssEndMb, jit.Empty?.RssEndMb)}, RSS N={options.Services} {Ratio(aot.Loaded?.RssEndMb, jit.Loaded?.RssEndMb)}, peak {Ratio(aot.Loaded?.HwmMb, jit.Loaded?.HwmMb)}, up {Ratio(aot.UpS, jit.UpS)}, sync {Ratio(aot.CaughtUpS, jit.CaughtUpS)}");
        }

        return t.ToString();
    }

    private static string Phase(PhaseResult? p) => p is null
        ? $"{"-",8} {"-",6} {"-",6} {"-",6}"
        : string.Create(CultureInfo.InvariantCulture, $"{p.RssMb,8:0.0} {p.RssEndMb,6:0.0} {p.HwmMb,6:0.0} {p.IdleCpuPercent,6:0.00}");

    private static string F(double? v, string format) => v is { } x ? x.ToString(format, CultureInfo.InvariantCulture) : "-";

    private static string Ratio(double? a, double? b) => a is { } x && b is { } y && y > 0 ? (x / y).ToString("0.00", CultureInfo.InvariantCulture) + "x" : "-";
}
