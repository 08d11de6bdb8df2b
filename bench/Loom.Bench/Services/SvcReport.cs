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
        var ratios = new List<object>();
        if (ipt is not null && nft is not null)
        {
            t.AppendLine();
            t.AppendLine("nftables / iptables (same N; sync times: < 1.00x = nftables faster; rates: > 1.00x = nftables more conn/s; p50s)");
            t.AppendLine(Inv, $"{"",-9} {"N",6} {"initial",8} {"full",8} {"change",8} {"flush",8}   {"svc c/s",8} {"svc txn",8} {"svc p99",8} {"dir c/s",8}   {"RSS",6}");
            foreach (var c in nft.Cells)
            {
                var i = ipt.Cells.FirstOrDefault(x => x.Services == c.Services);
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
        }

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
        }, JsonOptions) + "\n");
        Console.WriteLine();
        Console.WriteLine($"results: {outPath}");
        return 0;
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
