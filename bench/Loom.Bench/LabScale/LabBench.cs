using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Loom.Core.Model;
using Loom.Lab;
using Loom.Linux;

namespace Loom.Bench.LabScale;

/// <summary>
/// <c>Loom.Bench lab</c> (bench/lab.sh): for each service backend, a 3-node lab of its own (<c>loom lab up
/// --service-backend B</c> with the prefix <c>lbl&lt;pid&gt;-&lt;b&gt;-</c> and the directory /tmp/&lt;prefix&gt;lab),
/// <c>loom lab apply</c> of N Services, the time until every agent programs all of them, the agents' memory, then the
/// time from a store write to a new ClusterIP answering from a pod on every node. See bench/README.md.
/// </summary>
internal static class LabBench
{
    public const string Base = "lbl";

    public static int Run(string[] args)
    {
        if (!BenchHost.TryParse("lab", args, LabBenchOptions.Parse, out var options))
        {
            return 2;
        }

        if (!BenchHost.IsRoot("lab", "the lab creates network namespaces"))
        {
            return 1;
        }

        if (!File.Exists(LoomCli.Loom))
        {
            Console.Error.WriteLine($"bench lab: {LoomCli.Loom} is missing; run `make build`");
            return 1;
        }

        return BenchHost.RunCancellable(ct => RunAsync(options, ct));
    }

    private static async Task<int> RunAsync(LabBenchOptions options, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        var machine = BenchHost.Header("Loom lab-scale benchmark");
        Console.WriteLine($"  workload  loom lab apply of {options.Services} Services ({ScaleManifest.WithEndpoints(options.Services)} with the 2 webpod endpoints) on a 3-node lab (sqlite store, no cluster DNS); " +
            $"{options.Probes} new Services one at a time; backends {string.Join(", ", options.Backends.Select(LabBenchOptions.Name))}");
        Console.WriteLine($"  limits    {options.TimeoutSeconds} s per backend for the apply and catch-up, {options.ProbeTimeoutSeconds} s per probe, no new probe after {options.ProbeBudgetSeconds} s");
        foreach (var swept in await SweepStaleAsync(Base, ct).ConfigureAwait(false))
        {
            Console.WriteLine($"  swept     {swept}");
        }

        var results = new List<BackendResult>();
        try
        {
            foreach (var backend in options.Backends)
            {
                results.Add(await BackendRun.RunAsync(backend, options, ct).ConfigureAwait(false));
            }
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine();
            Console.Error.WriteLine("bench lab: interrupted; the lab was taken down");
            return 130;
        }

        var end = Machine.Describe();
        var report = LabReport.Build(results, options, machine, end, total.Elapsed);
        Console.WriteLine();
        Console.Write(report.Table);
        var outPath = options.Out ?? Path.Combine(Environment.GetEnvironmentVariable("LOOM_BENCH_OUT_DIR") ?? "out/bench", $"lab-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
        await File.WriteAllTextAsync(outPath, report.Json, CancellationToken.None).ConfigureAwait(false);
        Console.WriteLine($"results: {outPath}   total run time {total.Elapsed.TotalSeconds:0} s");
        return results.Any(r => r.Status == "error") ? 1 : 0;
    }

    /// <summary>
    /// Labs of killed runs (<c>&lt;base&gt;&lt;dead pid&gt;-&lt;b&gt;-</c>, e.g. lbl for this bench, lbd for the datapath
    /// bench: namespaces, lab directories, bpffs pins, cgroups), taken down with <c>loom lab down</c>, which stops their
    /// agents and workloads too.
    /// </summary>
    internal static async Task<List<string>> SweepStaleAsync(string baseName, CancellationToken ct)
    {
        var names = NetNs.List()
            .Concat(Directory.GetDirectories(Path.GetTempPath(), baseName + "*").Select(Path.GetFileName))
            .Concat(Directory.Exists("/sys/fs/bpf") ? Directory.GetDirectories("/sys/fs/bpf", baseName + "*").Select(Path.GetFileName) : [])
            .Concat(Cgroups(baseName).Select(Path.GetFileName))
            .OfType<string>();
        var prefixes = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var name in names)
        {
            if (RunPrefix.TryParsePid(name, baseName, out var pid) && pid != Environment.ProcessId && !RunPrefix.IsAlive(pid))
            {
                // lbl<pid>-<b>-...: the lab's prefix is everything up to the second dash.
                var second = name.IndexOf('-', name.IndexOf('-', StringComparison.Ordinal) + 1);
                if (second > 0)
                {
                    prefixes.Add(name[..(second + 1)]);
                }
            }
        }

        var swept = new List<string>();
        foreach (var prefix in prefixes)
        {
            var down = await new LoomCli(Path.Combine(Path.GetTempPath(), prefix + "lab"), prefix).LabAsync(["down"], TimeSpan.FromSeconds(120), ct).ConfigureAwait(false);
            swept.Add(down.Ok ? $"lab {prefix}* left by a killed run (loom lab down)" : $"WARNING: could not take down {prefix}*: {down}");
        }

        return swept;
    }

    private static IEnumerable<string> Cgroups(string baseName)
    {
        foreach (var root in new[] { "/sys/fs/cgroup/unified", "/sys/fs/cgroup" })
        {
            if (Directory.Exists(root))
            {
                foreach (var dir in Directory.GetDirectories(root, baseName + "*"))
                {
                    yield return dir;
                }
            }
        }
    }

    internal static string Seconds(double? s) => s is { } v ? v.ToString("0.0", CultureInfo.InvariantCulture) : "-";

    internal static string Key(ServiceProxyMode mode) => mode switch
    {
        ServiceProxyMode.Iptables => "ipt",
        ServiceProxyMode.Nftables => "nft",
        _ => "ebpf",
    };

    internal static LabState LoadState(string labDir) => Lab.Lab.Load(labDir) ?? throw new BenchException($"no lab state in {labDir}");
}
