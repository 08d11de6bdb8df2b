using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Loom.Bench.LabScale;
using Loom.Lab;
using Loom.Linux;

namespace Loom.Bench.Policy;

/// <summary>
/// <c>Loom.Bench policy</c> (bench/policy.sh): NetworkPolicy in eBPF on a 3-node lab of its own (prefix
/// lbp&lt;pid&gt;-&lt;cluster&gt;-): new-connection rate and latency between two pods on different nodes without policy and
/// with 100 policies over 1,000 identities selecting the server; the time from applying an allow to a connection
/// passing from every node; the agents' memory before and after. See bench/README.md, "Policy benchmark".
/// </summary>
internal static partial class PolicyBench
{
    public const string Base = "lbp";

    public static int Run(string[] args)
    {
        if (!BenchHost.TryParse("policy", args, PolicyOptions.Parse, out var options))
        {
            return 2;
        }

        if (!BenchHost.IsRoot("policy", "the lab creates network namespaces"))
        {
            return 1;
        }

        foreach (var needed in new[] { LoomCli.Loom, Loom.Testing.CniRunner.LoomCni, Path.GetFullPath(options.ClusterFile) })
        {
            if (!File.Exists(needed))
            {
                Console.Error.WriteLine($"bench policy: {needed} is missing (run `make build`)");
                return 1;
            }
        }

        // The probes block pool threads (a second or less each) and the signal handlers run on the pool: with the 2
        // threads a 2-CPU machine starts with, a SIGTERM/SIGINT was seen to wait seconds for a thread.
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 16), io);
        return BenchHost.RunCancellable(ct => RunAsync(options, ct));
    }

    private static async Task<int> RunAsync(PolicyOptions options, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        var machine = BenchHost.Header("Loom network-policy benchmark");
        Console.WriteLine($"  workload  3-node lab ({options.ClusterFile}); {options.Reps} reps x {options.Seconds} s of sequential new connections client -> server " +
            $"(other node), no policy and {options.Policies} policies over {options.Ghosts} ghost identities, alternating; {options.Repeats} allow apply/delete cycles timed per node");
        foreach (var swept in await LabBench.SweepStaleAsync(Base, ct).ConfigureAwait(false))
        {
            Console.WriteLine($"  swept     {swept}");
        }

        var prefix = RunPrefix.For(Base) + options.Cluster + "-";
        var cli = new LoomCli(Path.Combine(Path.GetTempPath(), prefix + "lab"), prefix);
        var r = new PolicyResults { Cluster = options.Cluster, Prefix = prefix, LoadStart = machine.LoadAverage };
        Console.WriteLine();
        Console.WriteLine($"== lab {prefix}* in {cli.LabDir}");
        var servers = new List<IDisposable>();
        try
        {
            var up = await cli.LabAsync(["up", "--nodes", "3", "--config", Path.GetFullPath(options.ClusterFile), "--no-dns", "--timeout", "120"],
                TimeSpan.FromSeconds(240), ct).ConfigureAwait(false);
            if (!up.Ok)
            {
                throw new BenchException($"lab up failed: {up}");
            }

            r.LabUpS = up.Elapsed.TotalSeconds;
            Console.WriteLine($"   lab up in {r.LabUpS:0.0} s");
            await new PolicyRun(options, cli, r, servers, ct).RunAsync().ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine();
            Console.Error.WriteLine("bench policy: interrupted; taking the lab down");
            return 130;
        }
        catch (Exception e) when (e is BenchException or LabException)
        {
            r.Status = "error";
            r.Reason = e.Message;
            Console.WriteLine($"   ERROR: {e.Message}");
        }
        finally
        {
            foreach (var s in servers)
            {
                s.Dispose();
            }

            r.LoadEnd = Machine.Describe().LoadAverage;
            // Not cancellable: an interrupted run still takes its lab down.
            var down = await cli.LabAsync(["down"], TimeSpan.FromSeconds(180), CancellationToken.None).ConfigureAwait(false);
            Console.WriteLine(down.Ok ? $"   lab down in {down.Elapsed.TotalSeconds:0.0} s" : $"   WARNING: {down}");
        }

        var report = PolicyReport.Build(r, options, machine, total.Elapsed);
        Console.WriteLine();
        Console.Write(report.Table);
        var outPath = options.Out ?? Path.Combine(Environment.GetEnvironmentVariable("LOOM_BENCH_OUT_DIR") ?? "out/bench", $"policy-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
        await File.WriteAllTextAsync(outPath, report.Json, CancellationToken.None).ConfigureAwait(false);
        Console.WriteLine($"results: {outPath}   total run time {total.Elapsed.TotalSeconds:0} s");
        return r.Status == "ok" ? 0 : 1;
    }

    /// <summary>VmRSS of a lab agent in MiB (its pid from the lab state); NaN if it is not running.</summary>
    internal static double AgentRssMiB(LabNode node)
    {
        if (node.AgentPid is not { } pid)
        {
            return double.NaN;
        }

        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            return line is null ? double.NaN : double.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
        }
        catch (IOException)
        {
            return double.NaN;
        }
    }

    /// <summary>The policy controller's ipcache entry count, from <c>loom status</c> on the node's agent socket; null if unknown.</summary>
    internal static async Task<int?> IpcacheEntriesAsync(LabState state, string node, CancellationToken ct)
    {
        var run = await LoomCli.RunAsync(["status", "--socket", Lab.Lab.AgentSocket(state, node)], TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
        var m = IpcacheText().Match(run.Output);
        return m.Success ? int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : null;
    }

    [GeneratedRegex(@"(\d+) ipcache entries")]
    private static partial Regex IpcacheText();
}
