using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Loom.Bench.Services;

/// <summary>The services bench's tables, ratios and JSON, from one or more backend runs.</summary>
internal static class SvcReport
{
    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Reads the <c>--part</c> files of the per-backend processes and prints them together.</summary>
    public static int Merge(SvcOptions options)
    {
        var runs = new List<BackendRun>();
        foreach (var f in options.Merge)
        {
            runs.AddRange(JsonSerializer.Deserialize<List<BackendRun>>(File.ReadAllText(f), JsonOptions) ?? []);
        }

        if (runs.Count == 0)
        {
            Console.Error.WriteLine("bench services: nothing to merge");
            return 1;
        }

        return Print(runs, options);
    }

    public static int Print(IReadOnlyList<BackendRun> runs, SvcOptions options)
    {
        var t = new StringBuilder();
        var m = runs[0];
        t.AppendLine();
        t.AppendLine("Loom services benchmark");
        t.AppendLine(Inv, $"  commit    {Environment.GetEnvironmentVariable("LOOM_BENCH_COMMIT") ?? "?"}   {m.Runtime}");
        t.AppendLine(Inv, $"  machine   {m.Nproc} CPUs, {m.Cpu}, kernel {m.Kernel}");
        foreach (var r in runs)
        {
            t.AppendLine(Inv, $"  {r.Backend,-9} {r.Tool}; load {r.LoadAverageAtStart} at start, {r.LoadAverageAtEnd} at end; {r.TotalSeconds:0.0} s");
        }

        var maxLoad = runs.SelectMany(r => new[] { r.LoadAverageAtStart, r.LoadAverageAtEnd })
            .Select(l => double.TryParse(l.Split(' ')[0], NumberStyles.Float, Inv, out var v) ? v : 0).Max();
        if (maxLoad > m.Nproc * 0.75)
        {
            t.AppendLine(Inv, $"  NOTE      load average up to {maxLoad:0.0} on {m.Nproc} CPUs: the machine was busy with other work during the run;");
            t.AppendLine("            absolute times are inflated and noisy. The ratios compare figures taken in the same run.");
        }

        t.AppendLine();
        t.AppendLine("Sync wall-clock, ms: the whole IServiceBackend.Sync on a thread in the node namespace (read the kernel's rules with");
        t.AppendLine("iptables-save / nft -j list, render, apply with iptables-restore / nft -f). p50 (samples); samples are reduced when");
        t.AppendLine(Inv, $"a sync is slow (at most {m.Reps}, stopping after the first one past {m.SyncBudgetSeconds:0.#} s; change counts both directions);");
        t.AppendLine(Inv, $"a sync still running after {m.SyncTimeoutSeconds:0} s is killed (its tool, by pid; nothing is committed) and shown as `+1k` / `killed`.");
        t.AppendLine("  initial = first sync into an empty kernel (after a Flush); full = a new instance's first sync with the N services in place");
        t.AppendLine("  (agent restart: everything rewritten); change = the live instance, one service's endpoint replaced; flush = Flush() of N.");
        if (runs.Any(r => r.Backend == "ebpf"))
        {
            t.AppendLine("  ebpf: Sync reads lb4_svc / lb4_backends / lb4_revnat (bpf syscalls, in-process) and writes the differences; a new");
            t.AppendLine("  instance's first Sync also loads lb4.o (verifier) and attaches tc to the client veth. initial = Flush (unpins the maps)");
            t.AppendLine("  then Sync into empty maps; full = a new instance adopting the pinned maps with N in place (nothing to write).");
        }
        t.AppendLine();
        t.AppendLine(Inv, $"{"backend",-9} {"N",6} {"initial",16} {"full",16} {"change",16} {"flush",16}   {"max",9}");
        foreach (var r in runs)
        {
            foreach (var c in r.Cells)
            {
                var done = new[] { c.Initial, c.Full, c.Change, c.Flush }.Where(s => s.Samples.Count > 0).ToList();
                var max = done.Count == 0 ? double.NaN : done.Max(s => s.Stats.Max);
                t.AppendLine(Inv, $"{r.Backend,-9} {c.Services,6} {Sync(c.Initial),16} {Sync(c.Full),16} {Sync(c.Change),16} {Sync(c.Flush),16}   {Stats.Ms(max),9}");
            }
        }

        t.AppendLine();
        t.AppendLine("Memory after the N-service syncs: the bench process, which ran them (one process per backend; RSS includes the .NET");
        t.AppendLine("runtime, the load generator and the servers; heap = managed heap after a full GC). kernel: what the node namespace holds");
        t.AppendLine("(iptables: nat+filter iptables-save; nftables: nft list table ip kube-proxy, elements of its maps), and how long one");
        t.AppendLine("listing takes (iptables-save -t nat + -t filter / nft -j list table: every sync starts with that).");
        if (runs.Any(r => r.Backend == "ebpf"))
        {
            t.AppendLine("ebpf: chains = services (lb4_svc masters), rules = lb4_svc entries (masters + slots), elems = lb4_backends entries,");
            t.AppendLine("lines = lb4_revnat entries, KiB = their keys + values, list ms = one dump of the three maps (every Sync starts with it).");
        }
        t.AppendLine();
        t.AppendLine(Inv, $"{"backend",-9} {"N",6} {"RSS MB",8} {"peak MB",8} {"heap MB",8}   {"chains",7} {"rules",7} {"elems",6} {"lines",7} {"KiB",7} {"list ms",8}");
        foreach (var r in runs)
        {
            foreach (var c in r.Cells.Where(c => c.Memory.RssMb > 0))
            {
                var k = c.Kernel;
                var mem = c.Memory;
                t.AppendLine(Inv, $"{r.Backend,-9} {c.Services,6} {mem.RssMb,8:0.0} {mem.PeakRssMb,8:0.0} {mem.ManagedMb,8:0.0}   {k.Chains,7} {k.Rules,7} {k.Elements,6} {k.Lines,7} {k.Bytes / 1024.0,7:0} {k.ListMs,8:0.0}");
            }
        }

        t.AppendLine();
        t.AppendLine(Inv, $"New TCP connections from the client pod, {m.Clients} thread(s) one connection after the other, {m.Seconds:0.#} s or {m.MaxConnections} connections per cell,");
        t.AppendLine(Inv, $"service and direct alternating in {m.Slices} slices each (so both see the same background load; the baseline runs alone):");
        t.AppendLine("socket, connect, 4-byte request, 4-byte answer read, close with RST (SO_LINGER 0). `connect` = connect() alone (the SYN");
        t.AppendLine("the rules DNAT and its SYN-ACK); `txn` = connect + request/answer. ms, nearest-rank. service = the target's ClusterIP");
        t.AppendLine("10.100.0.10:80 (4 endpoints, DNAT to :8080), direct = the 4 backend pods' IPs :8080 round-robin, same N rules in place.");
        t.AppendLine();
        t.AppendLine(Inv, $"{"backend",-9} {"N",6} {"target",-18} {"conns",6} {"conn/s",7}   {"con p50",7} {"p90",6} {"p99",6}   {"txn p50",7} {"p90",6} {"p99",6} {"max",7} {"mean",6}  {"err",4}  spread");
        foreach (var r in runs)
        {
            if (r.Baseline is { } b)
            {
                t.AppendLine(Load(r.Backend, "-", b));
            }

            foreach (var c in r.Cells)
            {
                if (c.Service is { } s)
                {
                    t.AppendLine(Load(r.Backend, c.Services.ToString(Inv), s));
                }

                if (c.Direct is { } dc)
                {
                    t.AppendLine(Load(r.Backend, c.Services.ToString(Inv), dc));
                }
            }
        }

        t.AppendLine();
        t.AppendLine("service / direct (same backend, same N): rate < 1.00x and latency > 1.00x is the price of the ClusterIP");
        t.AppendLine(Inv, $"{"backend",-9} {"N",6} {"conn/s",8} {"con p50",8} {"con p99",8} {"txn p50",8} {"txn p99",8}   direct vs no-rules: {"conn/s",7} {"txn p50",8}");
        foreach (var r in runs)
        {
            foreach (var c in r.Cells.Where(c => c.Service is not null && c.Direct is not null))
            {
                var s = c.Service!;
                var d = c.Direct!;
                var b = r.Baseline;
                t.AppendLine(Inv,
                    $"{r.Backend,-9} {c.Services,6} {R(s.Rate, d.Rate),8} {R(s.Connect.P50, d.Connect.P50),8} {R(s.Connect.P99, d.Connect.P99),8} {R(s.Txn.P50, d.Txn.P50),8} {R(s.Txn.P99, d.Txn.P99),8}   {"",20}{(b is null ? "-" : R(d.Rate, b.Rate)),7} {(b is null ? "-" : R(d.Txn.P50, b.Txn.P50)),8}");
            }
        }

        var ipt = runs.FirstOrDefault(r => r.Backend == "iptables");
        var nft = runs.FirstOrDefault(r => r.Backend == "nftables");
        var ebpf = runs.FirstOrDefault(r => r.Backend == "ebpf");
        var ratios = Compare(t, nft, ipt);
        var ebpfRatios = Compare(t, ebpf, ipt);
        var ebpfNftRatios = Compare(t, ebpf, nft);
        var goals = ebpf is null ? null : Goals(t, ebpf, ipt);

        foreach (var r in runs)
        {
            foreach (var c in r.Cells.Where(c => c.Note is not null))
            {
                t.AppendLine(Inv, $"NOTE {r.Backend} N={c.Services}: {c.Note}");
            }
        }

        var warnings = runs.SelectMany(r => r.Warnings.Select(w => $"{r.Backend}: {w}")).ToList();
        if (warnings.Count > 0)
        {
            t.AppendLine();
            foreach (var w in warnings)
            {
                t.AppendLine("WARNING " + w);
            }
        }

        Console.Write(t.ToString());
        var outPath = options.Out ?? Path.Combine(Environment.GetEnvironmentVariable("LOOM_BENCH_OUT_DIR") is { Length: > 0 } dir ? dir : "out/bench",
            $"services-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
        File.WriteAllText(outPath, JsonSerializer.Serialize(new
        {
            Date = DateTime.UtcNow.ToString("o", Inv),
            Commit = Environment.GetEnvironmentVariable("LOOM_BENCH_COMMIT"),
            Unit = "ms",
            Percentiles = "nearest-rank",
            Measured = new
            {
                Sync = "wall-clock of IServiceBackend.Sync / Flush on a thread inside the node namespace (list + render + apply)",
                Load = "client pod thread(s), one connection after the other: socket, connect, 4-byte request, 4-byte answer, close with RST; connect = connect() alone, txn = until the answer is read; rate = completed txns / elapsed",
                Memory = "VmRSS/VmHWM of the bench process (one per backend) after the N-service syncs; heap = GCMemoryInfo.HeapSizeBytes after a full compacting GC",
            },
            Runs = runs,
            NftablesOverIptables = ratios,
            EbpfOverIptables = ebpfRatios,
            EbpfOverNftables = ebpfNftRatios,
            Goals = goals,
        }, JsonOptions) + "\n");
        Console.WriteLine();
        Console.WriteLine($"results: {outPath}");
        return 0;
    }

    /// <summary>The table "a / b" at the same N (p50s; rates: > 1.00x = a carries more), and the same figures for the JSON.</summary>
    private static List<object> Compare(StringBuilder t, BackendRun? a, BackendRun? b)
    {
        var ratios = new List<object>();
        if (a is null || b is null)
        {
            return ratios;
        }

        t.AppendLine();
        t.AppendLine(Inv, $"{a.Backend} / {b.Backend} (same N; sync times: < 1.00x = {a.Backend} faster; rates: > 1.00x = {a.Backend} more conn/s; p50s;");
        t.AppendLine("separate processes run one after the other, so the load differed: see the load averages above)");
        t.AppendLine(Inv, $"{"",-9} {"N",6} {"initial",8} {"full",8} {"change",8} {"flush",8}   {"svc c/s",8} {"svc txn",8} {"svc p99",8} {"dir c/s",8}   {"RSS",6}");
        foreach (var c in a.Cells)
        {
            var i = b.Cells.FirstOrDefault(x => x.Services == c.Services);
            if (i is null)
            {
                continue;
            }

            t.AppendLine(Inv,
                $"{"",-9} {c.Services,6} {R(c.Initial.Stats.P50, i.Initial.Stats.P50),8} {R(c.Full.Stats.P50, i.Full.Stats.P50),8} {R(c.Change.Stats.P50, i.Change.Stats.P50),8} {R(c.Flush.Stats.P50, i.Flush.Stats.P50),8}   {R(c.Service?.Rate, i.Service?.Rate),8} {R(c.Service?.Txn.P50, i.Service?.Txn.P50),8} {R(c.Service?.Txn.P99, i.Service?.Txn.P99),8} {R(c.Direct?.Rate, i.Direct?.Rate),8}   {R(c.Memory.RssMb, i.Memory.RssMb),6}");
            ratios.Add(new
            {
                c.Services,
                Initial = c.Initial.Stats.P50 / i.Initial.Stats.P50,
                Full = c.Full.Stats.P50 / i.Full.Stats.P50,
                Change = c.Change.Stats.P50 / i.Change.Stats.P50,
                Flush = c.Flush.Stats.P50 / i.Flush.Stats.P50,
                ServiceRate = c.Service?.Rate / i.Service?.Rate,
                ServiceTxnP50 = c.Service?.Txn.P50 / i.Service?.Txn.P50,
                ServiceTxnP99 = c.Service?.Txn.P99 / i.Service?.Txn.P99,
                DirectRate = c.Direct?.Rate / i.Direct?.Rate,
                Rss = c.Memory.RssMb / i.Memory.RssMb,
            });
        }

        return ratios;
    }

    /// <summary>
    /// The issue's goals for the eBPF backend, each printed with the figures it is computed from and MET / NOT MET
    /// (or a bound when iptables could not be measured at that N). Reported, never asserted.
    /// </summary>
    private static List<object> Goals(StringBuilder t, BackendRun ebpf, BackendRun? ipt)
    {
        var goals = new List<object>();
        var big = ebpf.Cells.Where(c => c.Service is not null).MaxBy(c => c.Services);
        var one = ebpf.Cells.FirstOrDefault(c => c.Services == 1 && c.Direct is not null);
        t.AppendLine();
        t.AppendLine("Goals (from the issue), eBPF backend; reported, not asserted:");
        void Line(string goal, string figures, bool? met, double? value)
        {
            var verdict = met switch { true => "MET", false => "NOT MET", null => "n/a" };
            t.AppendLine(Inv, $"  {verdict,-8} {goal}");
            t.AppendLine(Inv, $"           {figures}");
            goals.Add(new { Goal = goal, Figures = figures, Met = met, Value = value });
        }

        if (big is null)
        {
            t.AppendLine("  (no eBPF cell with connections measured)");
            return goals;
        }

        var N = big.Services;
        // 1. With the largest N, the ClusterIP through tc vs the direct path with 1 service (and vs direct at the same N, interleaved).
        if (one is not null)
        {
            var rate = big.Service!.Rate / one.Direct!.Rate;
            Line($"with {N} services eBPF >= 0.95x the direct path with 1 service: conn/s",
                string.Create(Inv, $"service@{N} {big.Service.Rate:0} conn/s / direct@1 {one.Direct.Rate:0} conn/s = {rate:0.00}x (same process, measured {N} vs 1 at different times); same slices: service@{N} / direct@{N} = {big.Service.Rate / big.Direct!.Rate:0.00}x"),
                rate >= 0.95, rate);
            var con = one.Direct.Connect.P50 / big.Service.Connect.P50;
            var txn = one.Direct.Txn.P50 / big.Service.Txn.P50;
            Line($"with {N} services eBPF >= 0.95x the direct path with 1 service: p50 latency (as speed, direct p50 / service p50)",
                string.Create(Inv, $"connect p50 direct@1 {one.Direct.Connect.P50:0.0000} ms / service@{N} {big.Service.Connect.P50:0.0000} ms = {con:0.00}x; txn p50 {one.Direct.Txn.P50:0.0000} / {big.Service.Txn.P50:0.0000} ms = {txn:0.00}x; same slices: connect p50 direct@{N} / service@{N} = {big.Direct!.Connect.P50 / big.Service.Connect.P50:0.00}x"),
                con >= 0.95, con);
        }

        // 2. conn/s >= 2x iptables at the same N (or iptables' largest N with connections measured).
        if (ipt is not null)
        {
            var same = ipt.Cells.FirstOrDefault(c => c.Services == N && c.Service is not null);
            var reached = same ?? ipt.Cells.Where(c => c.Service is not null).MaxBy(c => c.Services);
            if (reached is not null)
            {
                var ebpfAt = ebpf.Cells.FirstOrDefault(c => c.Services == reached.Services && c.Service is not null);
                var r = big.Service!.Rate / reached.Service!.Rate;
                var caveat = same is not null ? "" : string.Create(Inv, $" (iptables did not get {N} services synced within its cap, so this compares with iptables at N={reached.Services}, its largest N with traffic: iptables only gets slower with more rules)");
                var alsoSame = ebpfAt is null || same is not null ? "" : string.Create(Inv, $"; eBPF@{reached.Services} / iptables@{reached.Services} = {ebpfAt.Service!.Rate / reached.Service.Rate:0.00}x");
                Line($"with {N} services eBPF >= 2x iptables: conn/s to the ClusterIP",
                    string.Create(Inv, $"eBPF@{N} {big.Service.Rate:0} / iptables@{reached.Services} {reached.Service.Rate:0} = {r:0.00}x{caveat}{alsoSame}; iptables ran in its own process earlier (see its load)"),
                    r >= 2, r);
            }
            else
            {
                Line($"with {N} services eBPF >= 2x iptables: conn/s", "iptables has no cell with connections measured", null, null);
            }

            // 3. Programming N services <= 0.05x iptables-restore of the same (initial sync into an empty kernel).
            var iptN = ipt.Cells.FirstOrDefault(c => c.Services == N);
            var ebpfInit = big.Initial.Stats.P50;
            if (iptN is not null && iptN.Initial.Samples.Count > 0)
            {
                var r = ebpfInit / iptN.Initial.Stats.P50;
                Line($"programming {N} services <= 0.05x iptables-restore of the same (initial sync p50)",
                    string.Create(Inv, $"eBPF {Stats.Ms(ebpfInit)} ms / iptables {Stats.Ms(iptN.Initial.Stats.P50)} ms = {r:0.000}x"), r <= 0.05, r);
            }
            else
            {
                var timeout = iptN?.Initial.TimedOut > 0 ? iptN.Initial.TimeoutSeconds * 1000 : double.NaN;
                var bound = ebpfInit / timeout;
                var largest = ipt.Cells.Where(c => c.Initial.Samples.Count > 0).MaxBy(c => c.Services);
                var ebpfAtLargest = largest is null ? null : ebpf.Cells.FirstOrDefault(c => c.Services == largest.Services && c.Initial.Samples.Count > 0);
                var at = largest is null || ebpfAtLargest is null ? "" : string.Create(Inv,
                    $"; at N={largest.Services} (iptables' largest synced): eBPF {Stats.Ms(ebpfAtLargest.Initial.Stats.P50)} / iptables {Stats.Ms(largest.Initial.Stats.P50)} ms = {ebpfAtLargest.Initial.Stats.P50 / largest.Initial.Stats.P50:0.000}x");
                Line($"programming {N} services <= 0.05x iptables-restore of the same (initial sync p50)",
                    double.IsNaN(bound)
                        ? string.Create(Inv, $"iptables has no initial sync of {N} services{at}")
                        : string.Create(Inv, $"iptables' initial sync of {N} services was killed after {timeout / 1000:0} s, so the ratio is below eBPF {Stats.Ms(ebpfInit)} ms / {timeout:0} ms = {bound:0.0000}x (an upper bound){at}"),
                    double.IsNaN(bound) ? null : bound <= 0.05, double.IsNaN(bound) ? null : bound);
            }
        }

        // 4. One service change <= 1 ms with N in place.
        var change = big.Change;
        if (change.Samples.Count > 0)
        {
            Line($"one service change <= 1 ms (with {N} services in place, p50)",
                string.Create(Inv, $"change p50 {Stats.Ms(change.Stats.P50)} ms, max {Stats.Ms(change.Stats.Max)} ms ({change.Samples.Count} samples; the whole Sync: dump of the three maps + diff + writes)"),
                change.Stats.P50 <= 1, change.Stats.P50);
        }

        foreach (var c in ebpf.Cells.Where(c => c.Services < N && c.Change.Samples.Count > 0))
        {
            t.AppendLine(Inv, $"           (change p50 at N={c.Services}: {Stats.Ms(c.Change.Stats.P50)} ms)");
        }

        return goals;
    }

    private static string Sync(SyncSeries s) =>
        (s.Samples.Count, s.TimedOut) switch
        {
            (0, 0) => "-",
            (0, _) => string.Create(Inv, $">{s.TimeoutSeconds * 1000:0} killed"),
            (_, 0) => string.Create(Inv, $"{Stats.Ms(s.Stats.P50)} ({s.Samples.Count})"),
            _ => string.Create(Inv, $"{Stats.Ms(s.Stats.P50)} ({s.Samples.Count}+{s.TimedOut}k)"),
        };

    private static string Load(string backend, string n, LoadCell c) =>
        string.Create(Inv,
            $"{backend,-9} {n,6} {c.Target,-18} {c.Connections,6} {c.Rate,7:0}   {Stats.Ms(c.Connect.P50),7} {Stats.Ms(c.ConnectP90),6} {Stats.Ms(c.Connect.P99),6}   {Stats.Ms(c.Txn.P50),7} {Stats.Ms(c.TxnP90),6} {Stats.Ms(c.Txn.P99),6} {Stats.Ms(c.Txn.Max),7} {Stats.Ms(c.Txn.Mean),6}  {c.Errors,4}  {string.Join('/', c.PerBackend)}");

    private static string R(double? a, double? b) =>
        a is { } x && b is { } y && y > 0 && !double.IsNaN(x) && !double.IsNaN(y) ? (x / y).ToString("0.00", Inv) + "x" : "-";
}
