using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Loom.Bench;
using Loom.Linux;
using Loom.Testing;

// The CNI benchmark: ADD then DEL of N pods, one exec at a time, for the reference bridge + host-local and for
// loom-cni (delegating to host-local, with its built-in IPAM, and routed with its built-in IPAM), in the same run,
// rounds rotating the order.
// Each sample is the wall-clock time of one whole plugin process run, spawned the way a runtime does (CniRunner.Exec).
// Nothing is created in the root network namespace: the plugins run inside per-row node namespaces.
// `Loom.Bench services ...` is the services benchmark instead (bench/services.sh, Services/ServicesBench.cs), and
// `Loom.Bench lab ...` the lab at scale (bench/lab.sh, LabScale/LabBench.cs), and `Loom.Bench datapath ...` the
// pod-to-pod throughput and latency of each network configuration (bench/datapath.sh, Datapath/DatapathBench.cs), and
// `Loom.Bench policy ...` NetworkPolicy's cost, apply-to-enforcement time and agent memory (bench/policy.sh, Policy/PolicyBench.cs),
// and `Loom.Bench flows ...` the cost of flow events on the eBPF datapath (bench/flows.sh, Flows/FlowsBench.cs), and
// `Loom.Bench nodeport ...` a node port's new-connection rate against straight to the pod (bench/nodeport.sh, NodePort/NodePortBench.cs),
// and `Loom.Bench store ...` the SQLite store's file size under 10,000 Service changes (bench/store.sh, Store/StoreBench.cs),
// and `Loom.Bench agent ...` the agent's memory and idle CPU with 10,000 Services, AOT against JIT (bench/agent.sh, Agent/AgentBench.cs).
if (args.Length > 0 && args[0] == "charts")
{
    return Loom.Bench.Charts.ChartsCommand.Run(args[1..]);
}

if (args.Length > 0 && args[0] == "services")
{
    return Loom.Bench.Services.ServicesBench.Run(args[1..]);
}

if (args.Length > 0 && args[0] == "lab")
{
    return Loom.Bench.LabScale.LabBench.Run(args[1..]);
}

if (args.Length > 0 && args[0] == "datapath")
{
    return Loom.Bench.Datapath.DatapathBench.Run(args[1..]);
}

if (args.Length > 0 && args[0] == "policy")
{
    return Loom.Bench.Policy.PolicyBench.Run(args[1..]);
}

if (args.Length > 0 && args[0] == "nodeport")
{
    return Loom.Bench.NodePort.NodePortBench.Run(args[1..]);
}

if (args.Length > 0 && args[0] == "store")
{
    return Loom.Bench.Store.StoreBench.Run(args[1..]);
}

if (args.Length > 0 && args[0] == "agent")
{
    return Loom.Bench.Agent.AgentBench.Run(args[1..]);
}

if (args.Length > 0 && args[0] == "flows")
{
    return Loom.Bench.Flows.FlowsBench.Run(args[1..]);
}

var options = BenchOptions.Parse(args);
if (!Environment.IsPrivilegedProcess)
{
    Console.Error.WriteLine("bench: must run as root (it creates network namespaces)");
    return 1;
}

foreach (var needed in new[] { CniRunner.LoomCni, Path.Combine(CniRunner.ReferenceDir, "bridge"), Path.Combine(CniRunner.ReferenceDir, "host-local") })
{
    if (!File.Exists(needed))
    {
        Console.Error.WriteLine($"bench: {needed} is missing (run `make build`; the reference plugins come from containernetworking-plugins)");
        return 1;
    }
}

using var cts = new CancellationTokenSource();
var cancel = cts.Token;
// Ctrl-C / SIGTERM / SIGHUP: stop after the current exec and clean up in finally (well under a second). Every
// such signal is handled that way, also a repeated one: Ctrl-C reaches both cni.sh (which forwards it) and this
// process. SIGKILL ends it at once; the sweep below removes what such a run left on the next start.
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cts.Cancel();
};
using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; cts.Cancel(); });
using var onHup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx => { ctx.Cancel = true; cts.Cancel(); });

const string Base = "lb";
var total = Stopwatch.StartNew();
var swept = NetNs.SweepStale(Base);
var sweptDirs = SweepStaleWorkDirs(Base);
var prefix = RunPrefix.For(Base);
var workDir = Path.Combine(Path.GetTempPath(), prefix + "work");
Directory.CreateDirectory(workDir);
var bridge = Path.Combine(CniRunner.ReferenceDir, "bridge");
var rows = new List<Row>
{
    new("ref", "reference bridge + host-local", bridge, "bridge", "host-local", prefix, workDir),
    new("lhl", "loom-cni + host-local", CniRunner.LoomCni, "loom-cni", "host-local", prefix, workDir),
    new("lbi", "loom-cni + built-in IPAM", CniRunner.LoomCni, "loom-cni", "loom", prefix, workDir),
    new("lrt", "loom-cni routed + built-in IPAM", CniRunner.LoomCni, "loom-cni", "loom", prefix, workDir, routed: true),
};
// The kernel's floor for each plumbing, in-process (Floor.cs): every row's gap to it is printed.
var floors = new List<Floor>
{
    new("fbr", "floor: in-process netlink, bridge", routed: false, prefix),
    new("frt", "floor: in-process netlink, routed", routed: true, prefix),
};
var busyboxCat = Path.Combine(workDir, "cat");
var probes = new List<Probe>
{
    new("floor_dynamic", "floor: /bin/cat (dynamic, glibc)", "/bin/cat"),
    new("floor_static", "floor: busybox cat (static)", busyboxCat),
    new("version_bridge", "bridge VERSION", bridge),
    new("version_loom_cni", "loom-cni VERSION", CniRunner.LoomCni),
};

try
{
    File.CreateSymbolicLink(busyboxCat, "/bin/busybox");
    var machine = Machine.Describe();
    Console.WriteLine("Loom CNI benchmark");
    Console.WriteLine($"  date      {DateTime.UtcNow:yyyy-MM-dd HH:mm:ss}Z   commit {Env("LOOM_BENCH_COMMIT") ?? "?"}");
    Console.WriteLine($"  machine   {machine.Nproc} CPUs, {machine.Cpu}, kernel {machine.Kernel}, {RuntimeInformation.FrameworkDescription}");
    Console.WriteLine($"  load      {machine.LoadAverage} (1/5/15 min; other work on the machine shows up in the figures)");
    Console.WriteLine($"  reference {CniRunner.ReferenceDir} (containernetworking-plugins {Env("LOOM_BENCH_REF_VERSION") ?? "?"}), loom-cni {CniRunner.LoomCni}");
    Console.WriteLine($"  workload  {options.Pods} pods: ADD each, then DEL each, one exec at a time; {options.Rounds} rounds rotating the row order; {options.Warmup} warm-up ADD/DEL per row and round");
    if (swept.Count + sweptDirs.Count > 0)
    {
        Console.WriteLine($"  swept     {swept.Count} namespace(s) and {sweptDirs.Count} work dir(s) left by killed runs");
    }

    Console.WriteLine();
    Console.Write("setting up namespaces ...");
    var setup = Stopwatch.StartNew();
    foreach (var row in rows)
    {
        row.Create(options.Pods, cancel);
    }

    foreach (var floor in floors)
    {
        floor.Create(options.Pods, cancel);
    }

    var nodes = rows.Count + floors.Count;
    Console.WriteLine($" {nodes} nodes + {nodes * options.Pods} pods in {setup.Elapsed.TotalSeconds:0.0} s (untimed)");

    for (var round = 0; round < options.Rounds; round++)
    {
        var runs = rows.Select(r => (r.Key, Run: (Action)(() => RunRow(r, round, options, cancel))))
            .Concat(floors.Select(f => (f.Key, Run: (Action)(() => f.Run(options.Pods, options.Warmup, cancel)))))
            .ToList();
        var order = Enumerable.Range(0, runs.Count).Select(k => runs[(k + round) % runs.Count]).ToList();
        Console.Write($"round {round + 1}/{options.Rounds}: probes");
        RunProbes(rows[0].Node!, probes, options.Pods, cancel);
        foreach (var (key, run) in order)
        {
            Console.Write($", {key}");
            run();
        }

        Console.WriteLine();
    }

    total.Stop();
    Console.WriteLine($"load average at the end: {Machine.Describe().LoadAverage}");
    var report = Report.Build(rows, floors, probes, options, machine, total.Elapsed);
    Console.WriteLine();
    Console.Write(report.Table);
    var outPath = options.Out ?? Path.Combine(Env("LOOM_BENCH_OUT_DIR") ?? "out/bench", $"cni-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json");
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
    File.WriteAllText(outPath, report.Json);
    Console.WriteLine($"results: {outPath}   total run time {total.Elapsed.TotalSeconds:0.0} s");
    return 0;
}
catch (OperationCanceledException)
{
    Console.Error.WriteLine();
    Console.Error.WriteLine("bench: interrupted; cleaning up");
    return 130;
}
catch (BenchException e)
{
    Console.Error.WriteLine();
    Console.Error.WriteLine("bench: " + e.Message);
    return 1;
}
catch (Exception e)
{
    // Caught, not left unhandled: an unhandled exception would skip the finally and leave namespaces behind.
    Console.Error.WriteLine();
    Console.Error.WriteLine("bench: " + e);
    return 1;
}
finally
{
    foreach (var row in rows)
    {
        row.Dispose();
    }

    foreach (var floor in floors)
    {
        floor.Dispose();
    }

    try
    {
        Directory.Delete(workDir, recursive: true);
    }
    catch (IOException e)
    {
        Console.Error.WriteLine($"bench: cannot remove {workDir}: {e.Message}");
    }
}

static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;

static double Timed(NetNsHandle node, string plugin, string command, string config, string? id, string? netns, out CniRun run)
{
    var t0 = Stopwatch.GetTimestamp();
    run = CniRunner.Exec(node, plugin, command, config, id, netns);
    return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
}

// The fixed costs, measured on exactly the same path as the plugins (thread enters the node namespace, spawns,
// writes stdin, waits): cat, the most trivial program that, like a plugin, reads its stdin to EOF and exits (one
// that never reads, such as true, can exit before the write and fail it with EPIPE), and each plugin's VERSION,
// which reads stdin and prints a constant. Interleaved so that drift hits every probe alike.
static void RunProbes(NetNsHandle node, List<Probe> probes, int n, CancellationToken cancel)
{
    GC.Collect();
    for (var i = 0; i < n; i++)
    {
        foreach (var p in probes)
        {
            cancel.ThrowIfCancellationRequested();
            var ms = Timed(node, p.Path, "VERSION", """{"cniVersion": "1.0.0"}""", null, null, out var run);
            if (!run.Ok)
            {
                throw new BenchException($"{p.Title} failed: {run}");
            }

            p.Samples.Add(ms);
        }
    }
}

static void RunRow(Row row, int round, BenchOptions options, CancellationToken cancel)
{
    var node = row.Node!;
    for (var w = 0; w < options.Warmup; w++)
    {
        cancel.ThrowIfCancellationRequested();
        var id = $"warm-{round}-{w}";
        Expect(row, "warm-up ADD", CniRunner.Exec(node, row.Plugin, "ADD", row.Config, id, row.PodPath(w % options.Pods)));
        Expect(row, "warm-up DEL", CniRunner.Exec(node, row.Plugin, "DEL", row.Config, id, row.PodPath(w % options.Pods)));
    }

    GC.Collect();
    for (var i = 0; i < options.Pods; i++)
    {
        cancel.ThrowIfCancellationRequested();
        var ms = Timed(node, row.Plugin, "ADD", row.Config, $"lb-{round}-{i}", row.PodPath(i), out var run);
        Expect(row, $"ADD pod {i}", run);
        using var result = JsonDocument.Parse(run.Stdout);
        if (!result.RootElement.TryGetProperty("ips", out var ips) || ips.GetArrayLength() == 0)
        {
            throw new BenchException($"{row.Title}: ADD pod {i} returned no IP: {run.Stdout}");
        }

        row.Add.Add(ms);
    }

    GC.Collect();
    for (var i = 0; i < options.Pods; i++)
    {
        cancel.ThrowIfCancellationRequested();
        var ms = Timed(node, row.Plugin, "DEL", row.Config, $"lb-{round}-{i}", row.PodPath(i), out var run);
        Expect(row, $"DEL pod {i}", run);
        row.Del.Add(ms);
    }

    row.CheckClean($"round {round + 1}");
}

static void Expect(Row row, string what, CniRun run)
{
    if (!run.Ok)
    {
        throw new BenchException($"{row.Title}: {what} failed: {run}");
    }
}

// Work dirs are /tmp/lb<pid>-work: remove those whose process is gone, like the namespace sweep.
static List<string> SweepStaleWorkDirs(string baseName)
{
    var removed = new List<string>();
    foreach (var dir in Directory.EnumerateDirectories(Path.GetTempPath(), baseName + "*-work"))
    {
        var name = Path.GetFileName(dir);
        if (RunPrefix.TryParsePid(name, baseName, out var pid) && pid != Environment.ProcessId && !RunPrefix.IsAlive(pid))
        {
            Directory.Delete(dir, recursive: true);
            removed.Add(dir);
        }
    }

    return removed;
}

namespace Loom.Bench
{
    internal sealed class BenchException(string message) : Exception(message);

    internal sealed record Probe(string Key, string Title, string Path)
    {
        public List<double> Samples { get; } = [];
    }

    internal sealed record BenchOptions(int Pods, int Rounds, int Warmup, string? Out)
    {
        public static BenchOptions Parse(string[] args)
        {
            return BenchArgs.Parse(args, new BenchOptions(100, 3, 3, null), (o, name, value) => name switch
            {
                // 250 pods at most: one /24 per node, the gateway and the warm-up pods need addresses too.
                "--pods" => o with { Pods = BenchArgs.Count(value, 1, 250) },
                "--rounds" => o with { Rounds = BenchArgs.Count(value, 1, 100) },
                "--warmup" => o with { Warmup = BenchArgs.Count(value, 0, 10) },
                "--out" => o with { Out = value },
                _ => throw new ArgumentException($"unknown option {name} (--pods N, --rounds N, --warmup N, --out FILE)"),
            });
        }
    }
}
