using System.Diagnostics;
using System.Runtime.InteropServices;
using Loom.Bench.LabScale;
using Loom.Testing;

namespace Loom.Bench.Datapath;

/// <summary>
/// <c>Loom.Bench datapath</c> (bench/datapath.sh): cross-node pod-to-pod TCP throughput (iperf3, 1 and 4 streams)
/// and 1-byte round-trip latency for each network configuration, against the underlay between the same two nodes
/// in the same lab. See bench/README.md, "Datapath benchmark".
/// </summary>
internal static class DatapathBench
{
    public const string Base = "lbd";

    /// <summary>Exit code when every configuration ran but one or more does not work yet.</summary>
    public const int NotWorkingExit = 3;

    public static int Run(string[] args)
    {
        if (!BenchHost.TryParse("datapath", args, DatapathOptions.Parse, out var options))
        {
            return 2;
        }

        if (!BenchHost.IsRoot("datapath", "the lab creates network namespaces"))
        {
            return 1;
        }

        try
        {
            foreach (var needed in new[] { LoomCli.Loom, CniRunner.LoomCni }.Concat(options.Configs.Select(c => Path.GetFullPath(c.File))))
            {
                if (!File.Exists(needed))
                {
                    throw new InvalidOperationException($"{needed} is missing (run `make build`)");
                }
            }

            _ = Iperf.Tool;
            _ = Shell.Require("bpftool", "apt-get install bpftool");
        }
        catch (InvalidOperationException e)
        {
            Console.Error.WriteLine("bench datapath: " + e.Message);
            return 1;
        }

        return BenchHost.RunCancellable(ct => RunAsync(options, ct));
    }

    private static async Task<int> RunAsync(DatapathOptions options, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        var machine = BenchHost.Header("Loom datapath benchmark");
        Console.WriteLine($"  workload  per configuration a 2-node lab, pod a on the first node, pod b on the second; {options.Reps} reps of: iperf3 1 stream and 4 streams " +
            $"({options.Seconds} s each after 1 s omitted), 1-byte TCP ping-pong ({options.LatencySeconds} s), underlay (eth1 to eth1) and pods alternating");
        Console.WriteLine($"  configs   {string.Join(", ", options.Configs.Select(c => c.Key))}; a pod path not working within {options.ReachTimeoutSeconds} s is reported as such");
        foreach (var swept in await LabBench.SweepStaleAsync(Base, ct).ConfigureAwait(false))
        {
            Console.WriteLine($"  swept     {swept}");
        }

        var results = new List<ConfigResult>();
        try
        {
            foreach (var config in options.Configs)
            {
                results.Add(await ConfigRun.RunAsync(config, options, ct).ConfigureAwait(false));
            }
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine();
            Console.Error.WriteLine("bench datapath: interrupted; the lab was taken down");
            return 130;
        }

        var report = DatapathReport.Build(results, options, machine, Machine.Describe(), total.Elapsed);
        Console.WriteLine();
        Console.Write(report.Table);
        var outPath = options.Out ?? Path.Combine(Environment.GetEnvironmentVariable("LOOM_BENCH_OUT_DIR") ?? "out/bench", $"datapath-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
        await File.WriteAllTextAsync(outPath, report.Json, CancellationToken.None).ConfigureAwait(false);
        Console.WriteLine($"results: {outPath}   total run time {total.Elapsed.TotalSeconds:0} s");
        return results.Any(r => r.Status == "error") ? 1 : results.Any(r => r.Status != "ok") ? NotWorkingExit : 0;
    }
}
