using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Loom.Bench.LabScale;

/// <summary>The lab bench's table on stdout and its JSON.</summary>
internal static class LabReport
{
    /// <summary>The issue's goal: every agent has programmed the N Services within a minute of the apply's start.</summary>
    public const double GoalSeconds = 60;

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static Report Build(List<BackendResult> results, LabBenchOptions options, Machine start, Machine end, TimeSpan elapsed)
    {
        var t = new StringBuilder();
        var nodes = results.SelectMany(r => r.Nodes.Select(n => n.Node)).Distinct().ToList();
        t.AppendLine(CultureInfo.InvariantCulture, $"loom lab apply of {options.Services} Services on a 3-node lab, then until every agent's loom_services and loom_service_endpoints count them all");
        t.AppendLine(CultureInfo.InvariantCulture, $"(seconds from the start of the apply; goal: all caught up <= {GoalSeconds:0} s; load average {start.LoadAverage} at start, {end.LoadAverage} at end)");
        t.AppendLine();
        t.AppendLine(CultureInfo.InvariantCulture, $"{"backend",-9} {"up",6} {"apply",8} {string.Join(' ', nodes.Select(n => $"{n,8}"))} {"all",8}  {"goal",-8} {"/ goal",7}  {"load at start",-15} status");
        foreach (var r in results)
        {
            var goal = r.AllCaughtUpS is { } all ? all <= GoalSeconds ? "MET" : "NOT MET" : r.Status == "error" ? "-" : "NOT MET";
            var apply = r.ApplyStatus == "timeout" ? "timeout" : LabBench.Seconds(r.ApplyS);
            var cells = nodes.Select(n => r.Nodes.FirstOrDefault(x => x.Node == n) is { } x ? Cell(x.CaughtUpS, r) : "-");
            var allCell = r.AllCaughtUpS is null && r.Status == "timeout" ? "timeout" : LabBench.Seconds(r.AllCaughtUpS);
            t.AppendLine(CultureInfo.InvariantCulture,
                $"{r.Backend,-9} {LabBench.Seconds(r.UpS),6} {apply,8} {string.Join(' ', cells.Select(c => $"{c,8}"))} {allCell,8}  {goal,-8} {Ratio(r.AllCaughtUpS, GoalSeconds),7}  {r.LoadStart,-15} {r.Status}{Applied(r, options)}{(r.Error is null ? "" : ": " + r.Error.Split('\n')[0])}");
        }

        t.AppendLine();
        t.AppendLine("Agents' memory in MB, VmRSS / VmHWM (peak): once caught up (or at the timeout) | after the probes");
        t.AppendLine(CultureInfo.InvariantCulture, $"{"backend",-9} {string.Join(' ', nodes.Select(n => $"{n,-25}"))}");
        foreach (var r in results)
        {
            var cells = nodes.Select(n => r.Nodes.FirstOrDefault(x => x.Node == n) is { } x ? $"{Mb(x.RssMb)}/{Mb(x.PeakRssMb)} | {Mb(x.RssEndMb)}/{Mb(x.PeakRssEndMb)}" : "-");
            t.AppendLine(CultureInfo.InvariantCulture, $"{r.Backend,-9} {string.Join(' ', cells.Select(c => $"{c,-25}"))}");
        }

        t.AppendLine();
        t.AppendLine("Service syncs by the time each agent caught up (loom_service_syncs_total, total seconds in loom_service_sync_duration_seconds)");
        foreach (var r in results)
        {
            t.AppendLine(CultureInfo.InvariantCulture, $"{r.Backend,-9} {string.Join("   ", r.Nodes.Select(n => $"{n.Node} {Num(n.Syncs)} syncs, {LabBench.Seconds(n.SyncSeconds)} s"))}");
        }

        t.AppendLine();
        t.AppendLine(CultureInfo.InvariantCulture, $"Event to live: ms from the store write of a new Service until its ClusterIP answers (whoami) from the node's client pod; {options.Probes} probes");
        t.AppendLine(CultureInfo.InvariantCulture, $"(nearest rank; 'agent' = {EventProbes.EventToWrite} over the probes, bucket upper bounds, n/a when not exported)");
        t.AppendLine(CultureInfo.InvariantCulture, $"{"backend",-9} {"node",-8} {"n",4} {"p50",8} {"p99",8} {"max",8} {"timeouts",8}   {"agent p50",9} {"p99",8} {"n",5}");
        if (results.All(r => r.ProbesRun == 0))
        {
            t.AppendLine("(no probe ran: probes need every agent caught up with the N Services)");
        }

        foreach (var r in results.Where(r => r.ProbesRun > 0))
        {
            foreach (var n in r.Nodes)
            {
                var live = Stats.Of(n.LiveMs.OfType<double>().ToList());
                var e = n.EventToWrite;
                t.AppendLine(CultureInfo.InvariantCulture,
                    $"{r.Backend,-9} {n.Node,-8} {live.Count,4} {Stats.Ms(live.P50),8} {Stats.Ms(live.P99),8} {Stats.Ms(live.Max),8} {n.LiveMs.Count(x => x is null),8}   {(e is null ? "n/a" : Stats.Ms(e.P50Ms)),9} {(e is null ? "n/a" : Stats.Ms(e.P99Ms)),8} {(e is null ? "" : Num(e.Count)),5}");
            }

            var slowest = Stats.Of(Enumerable.Range(0, r.ProbesRun).Select(i => r.Nodes.Select(n => n.LiveMs[i]).ToList())
                .Where(l => l.All(x => x is not null)).Select(l => l.Max()!.Value).ToList());
            t.AppendLine(CultureInfo.InvariantCulture, $"{r.Backend,-9} {"all 3",-8} {slowest.Count,4} {Stats.Ms(slowest.P50),8} {Stats.Ms(slowest.P99),8} {Stats.Ms(slowest.Max),8}            (live on every node: the slowest node of each probe)");
        }

        AppendRatios(t, results);
        var json = JsonSerializer.Serialize(new
        {
            Benchmark = "lab",
            Date = DateTime.UtcNow,
            Commit = Environment.GetEnvironmentVariable("LOOM_BENCH_COMMIT"),
            Machine = start,
            LoadEnd = end.LoadAverage,
            ElapsedS = Math.Round(elapsed.TotalSeconds, 1),
            Options = new
            {
                options.Services,
                options.Probes,
                Backends = options.Backends.Select(LabBenchOptions.Name),
                options.TimeoutSeconds,
                options.ProbeTimeoutSeconds,
                options.ProbeBudgetSeconds,
                ServicesWithEndpoints = ScaleManifest.WithEndpoints(options.Services),
                GoalSeconds,
            },
            Results = results,
        }, JsonOptions);
        return new Report(t.ToString(), json);
    }

    private static void AppendRatios(StringBuilder t, List<BackendResult> results)
    {
        var ipt = results.FirstOrDefault(r => r.Backend == "iptables");
        var others = results.Where(r => r != ipt).ToList();
        if (ipt is null || others.Count == 0)
        {
            return;
        }

        t.AppendLine();
        t.AppendLine("Ratios to iptables (< 1.00x: faster than iptables)");
        foreach (var r in others)
        {
            t.AppendLine(CultureInfo.InvariantCulture,
                $"{r.Backend + " / iptables",-20} apply {Ratio(Done(r), Done(ipt) ?? 0),7}   all caught up {Ratio(r.AllCaughtUpS, ipt.AllCaughtUpS ?? 0),7}   event to live p50 (all 3) {Ratio(SlowestP50(r), SlowestP50(ipt) ?? 0),7}");
        }
    }

    /// <summary>The apply's time if it finished (a killed apply's time is only the timeout).</summary>
    private static double? Done(BackendResult r) => r.ApplyStatus == "ok" ? r.ApplyS : null;

    private static double? SlowestP50(BackendResult r)
    {
        var per = Enumerable.Range(0, r.ProbesRun).Select(i => r.Nodes.Select(n => n.LiveMs[i]).ToList()).Where(l => l.All(x => x is not null)).Select(l => l.Max()!.Value).ToList();
        return per.Count == 0 ? null : Stats.Of(per).P50;
    }

    private static string Applied(BackendResult r, LabBenchOptions options) =>
        r.ApplyStatus == "timeout" ? $" (the apply had written {r.ServicesInStore} of {options.Services} Services)" : "";

    private static string Cell(double? caughtUp, BackendResult r) =>
        caughtUp is { } s ? s.ToString("0.0", CultureInfo.InvariantCulture) : r.Status == "timeout" ? "timeout" : "-";

    private static string Ratio(double? value, double reference) => value is { } v ? Stats.Ratio(v, reference) : "-";

    private static string Mb(double? v) => v is { } x ? x.ToString("0", CultureInfo.InvariantCulture) : "-";

    private static string Num(double? v) => v is { } x ? x.ToString("0", CultureInfo.InvariantCulture) : "-";
}
