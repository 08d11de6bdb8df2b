using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Loom.Bench.Services;

namespace Loom.Bench.Policy;

/// <summary>The stdout table (figures, ratios, the issue's goals) and the JSON of one policy run.</summary>
internal static class PolicyReport
{
    public const double RateGoal = 0.95;
    public const double EnforceGoalMs = 100;

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static Report Build(PolicyResults r, PolicyOptions o, Machine machine, TimeSpan elapsed)
    {
        var t = new StringBuilder();
        var ic = CultureInfo.InvariantCulture;
        t.AppendLine(ic, $"Policy benchmark, {o.Cluster} cluster ({o.ClusterFile}); status {r.Status}{(r.Reason is null ? "" : ": " + r.Reason)}");
        t.AppendLine(ic, $"load {r.LoadStart} at start, {r.LoadEnd} at the end");
        t.AppendLine();

        var none = Mode(r, "none");
        var pol = Mode(r, "policies");
        var rateRatio = pol.Rate / none.Rate;
        var pairs = r.Cells.GroupBy(c => c.Rep).Select(g => (None: g.FirstOrDefault(c => c.Mode == "none").Cell, Pol: g.FirstOrDefault(c => c.Mode == "policies").Cell))
            .Where(p => p.None is not null && p.Pol is not null).Select(p => p.Pol.Rate / p.None.Rate).ToList();
        t.AppendLine(ic, $"1. New connections client -> server ({Get(r.Pods, "client")} -> {Get(r.Pods, "server")}): connect + 4-byte request/answer + close (RST), one thread, {o.Reps} x {o.Seconds} s per mode");
        t.AppendLine(ic, $"   {"mode",-44} {"conn/s",8} {"txn p50",8} {"p99",8} {"con p50",8} {"conns",7} {"errors",6}");
        t.AppendLine(ic, $"   {"(a) no policy (baseline)",-44} {Row(none)}");
        t.AppendLine(ic, $"   {$"(b) {o.Policies} policies over {o.Ghosts} identities",-44} {Row(pol)}");
        t.AppendLine(ic, $"   {"ratio (b)/(a)",-44} {Stats.Ratio(pol.Rate, none.Rate),8} {Stats.Ratio(pol.TxnP50, none.TxnP50),8} {Stats.Ratio(pol.TxnP99, none.TxnP99),8} {Stats.Ratio(pol.ConP50, none.ConP50),8}");
        t.AppendLine(ic, $"   conn/s ratio per repetition (median {Stats.Ms(Stats.Of(pairs).P50)}x): {string.Join(", ", pairs.Select(p => p.ToString("0.00", ic) + "x"))}");
        t.AppendLine(ic, $"   goal: conn/s (b)/(a) >= {RateGoal:0.00}x: {Goal(rateRatio >= RateGoal, rateRatio)}");
        var denied = r.EnforcementChecks.Count(c => c.Contains("denied", StringComparison.Ordinal));
        t.AppendLine(ic, $"   enforced during (b): the intruder (no policy allows it) denied after {denied} of {r.EnforcementChecks.Count} (b) measurements{(denied == r.EnforcementChecks.Count ? "" : ": " + string.Join("; ", r.EnforcementChecks.Where(c => !c.Contains("denied", StringComparison.Ordinal))))}");
        t.AppendLine(ic, $"   the {o.Policies} policies: apply call p50 {Ms(r.PoliciesApplyMs, 0.5)} ms, seen in force (client passes, intruder denied; coarse, probes of up to 1 s) p50 {Ms(r.PoliciesEnforcedMs, 0.5)} ms ({r.PoliciesApplyMs.Count} applies)");
        t.AppendLine(ic, $"   ghosts: written in {r.GhostsS:0.0} s, in every agent's ipcache {r.GhostsInIpcacheS:0.0} s later ({string.Join(", ", r.Ipcache.Select(kv => $"{kv.Key} {kv.Value}"))} entries)");
        t.AppendLine();

        var all = r.ApplyToEnforced.Values.SelectMany(v => v).ToList();
        var allStats = Stats.Of(all);
        t.AppendLine(ic, $"2. Apply of an allow (target {Get(r.Pods, "target")} under deny-all ingress, probers under deny-all egress; the allow opens both) to the first");
        t.AppendLine(ic, $"   connection from the prober on each node, ms from the start of Lab.ApplyAsync");
        t.AppendLine(ic, $"   {"node",-14} {"p50",8} {"p99",8} {"max",8} {"n",4}");
        foreach (var (node, samples) in r.ApplyToEnforced)
        {
            var s = Stats.Of(samples);
            t.AppendLine(ic, $"   {node,-14} {Stats.Ms(s.P50),8} {Stats.Ms(s.P99),8} {Stats.Ms(s.Max),8} {s.Count,4}");
        }

        t.AppendLine(ic, $"   {"every node",-14} {Stats.Ms(allStats.P50),8} {Stats.Ms(allStats.P99),8} {Stats.Ms(allStats.Max),8} {allStats.Count,4}");
        t.AppendLine(ic, $"   goal: p50 and p99 <= {EnforceGoalMs:0} ms: p50 {Goal(allStats.P50 <= EnforceGoalMs, null)}, p99 {Goal(allStats.P99 <= EnforceGoalMs, null)}");
        t.AppendLine(ic, $"   the apply call itself p50 {Ms(r.AllowApplyCallMs, 0.5)} ms; delete to the last connection that passed p50 {Ms(r.DeleteToDeniedMs, 0.5)} ms, p99 {Ms(r.DeleteToDeniedMs, 0.99)} ms");
        foreach (var (node, (count, p50, p99)) in r.AgentPass)
        {
            t.AppendLine(ic, $"   agent {node}: loom_policy_pass_seconds {count:0} passes, p50 <= {Stats.Ms(p50)} ms, p99 <= {Stats.Ms(p99)} ms (bucket bounds)");
        }

        t.AppendLine();
        t.AppendLine(ic, $"3. Agent memory, MiB: VmRSS, and in () the managed heap (dotnet_total_memory_bytes, uncollected garbage included)");
        t.AppendLine(ic, $"   {"node",-14} {"before ghosts",18} {$"{o.Ghosts} ids + {o.Policies} pol",22} {"delta",16}");
        foreach (var (node, before) in r.RssBeforeMiB)
        {
            var after = r.RssAfterMiB.GetValueOrDefault(node, double.NaN);
            var mb = r.ManagedBeforeMiB.GetValueOrDefault(node, double.NaN);
            var ma = r.ManagedAfterMiB.GetValueOrDefault(node, double.NaN);
            t.AppendLine(ic, $"   {node,-14} {$"{before:0.0} ({mb:0.0})",18} {$"{after:0.0} ({ma:0.0})",22} {$"{after - before:+0.0;-0.0} ({ma - mb:+0.0;-0.0})",16}");
        }

        foreach (var f in r.Failures)
        {
            t.AppendLine("WARNING " + f);
        }

        t.AppendLine();
        var json = JsonSerializer.Serialize(new
        {
            Date = DateTime.UtcNow.ToString("o", ic),
            Commit = Environment.GetEnvironmentVariable("LOOM_BENCH_COMMIT"),
            Machine = new { machine.Nproc, machine.Cpu, machine.Kernel, LoadAverageAtStart = r.LoadStart, LoadAverageAtEnd = r.LoadEnd, Runtime = RuntimeInformation.FrameworkDescription },
            Options = o,
            r.Status,
            r.Reason,
            r.Prefix,
            r.LabUpS,
            r.Pods,
            Percentiles = "nearest-rank",
            ConnectionRate = new
            {
                None = none,
                Policies = pol,
                RateRatio = rateRatio,
                RateRatioPerRep = pairs,
                Goal = RateGoal,
                Cells = r.Cells.Select(c => new { c.Mode, Rep = c.Rep + 1, c.Cell }),
                r.EnforcementChecks,
                r.PoliciesApplyMs,
                r.PoliciesEnforcedMs,
            },
            Ghosts = new { Count = o.Ghosts, r.GhostsS, r.GhostsInIpcacheS, r.Ipcache },
            ApplyToEnforced = new
            {
                PerNodeMs = r.ApplyToEnforced,
                Stats = allStats,
                GoalMs = EnforceGoalMs,
                r.AllowApplyCallMs,
                r.DeleteToDeniedMs,
                AgentPassSeconds = r.AgentPass.ToDictionary(kv => kv.Key, kv => new { kv.Value.Count, kv.Value.P50Ms, kv.Value.P99Ms }),
            },
            Memory = new { r.RssBeforeMiB, r.RssAfterMiB, r.ManagedBeforeMiB, r.ManagedAfterMiB },
            r.Failures,
            TotalSeconds = Math.Round(elapsed.TotalSeconds, 1),
        }, JsonOptions);
        return new Report(t.ToString(), json + "\n");
    }

    /// <summary>One mode over its repetitions: pooled rate; latency percentiles as the median of the repetitions'.</summary>
    private sealed record ModeFigures(double Rate, double TxnP50, double TxnP99, double ConP50, int Connections, int Errors);

    private static ModeFigures Mode(PolicyResults r, string mode)
    {
        var cells = r.Cells.Where(c => c.Mode == mode).Select(c => c.Cell).ToList();
        double Median(Func<LoadCell, double> f) => cells.Count == 0 ? double.NaN : Stats.Of(cells.Select(f).ToList()).P50;
        var seconds = cells.Sum(c => c.Seconds);
        return new ModeFigures(seconds > 0 ? cells.Sum(c => c.Connections) / seconds : double.NaN, Median(c => c.Txn.P50), Median(c => c.Txn.P99), Median(c => c.Connect.P50),
            cells.Sum(c => c.Connections), cells.Sum(c => c.Errors));
    }

    private static string Row(ModeFigures m) =>
        string.Create(CultureInfo.InvariantCulture, $"{m.Rate,8:0} {Stats.Ms(m.TxnP50),8} {Stats.Ms(m.TxnP99),8} {Stats.Ms(m.ConP50),8} {m.Connections,7} {m.Errors,6}");

    private static string Goal(bool met, double? ratio) =>
        (met ? "MET" : "NOT MET") + (ratio is { } v ? string.Create(CultureInfo.InvariantCulture, $" ({v:0.00}x)") : "");

    private static string Ms(List<double> samples, double q) => samples.Count == 0 ? "-" : Stats.Ms(q >= 0.99 ? Stats.Of(samples).P99 : Stats.Of(samples).P50);

    private static string Get(Dictionary<string, string> d, string key) => d.GetValueOrDefault(key, "?");
}
