using System.Diagnostics;
using System.Globalization;
using System.Net;
using Loom.Bench.LabScale;
using Loom.Lab;
using Loom.Linux;
using Loom.Testing;

namespace Loom.Bench.Datapath;

/// <summary>
/// One configuration: a 2-node lab of its own (<c>loom lab up --nodes 2 --config FILE</c>, prefix
/// lbd&lt;pid&gt;-&lt;key&gt;-), pod a on the first node and pod b on the second, the datapath checked, pod b reached from
/// pod a within the bounded wait, then the repetitions (underlay and pods alternating), lab down whatever happened.
/// </summary>
internal static class ConfigRun
{
    public static async Task<ConfigResult> RunAsync(NetConfig config, DatapathOptions options, CancellationToken ct)
    {
        var prefix = RunPrefix.For(DatapathBench.Base) + config.Key + "-";
        var cli = new LoomCli(Path.Combine(Path.GetTempPath(), prefix + "lab"), prefix);
        var result = new ConfigResult(config) { Prefix = prefix, LoadStart = Machine.Describe().LoadAverage };
        Console.WriteLine();
        Console.WriteLine($"== {config.Title}: lab {prefix}* in {cli.LabDir}");
        try
        {
            var up = await cli.LabAsync(["up", "--nodes", "2", "--config", Path.GetFullPath(config.File), "--no-dns", "--timeout", "120"],
                TimeSpan.FromSeconds(240), ct).ConfigureAwait(false);
            result.LabUpS = up.Elapsed.TotalSeconds;
            if (!up.Ok)
            {
                return NotWorking(result, $"lab up failed: {FirstError(up)}");
            }

            Console.WriteLine($"   lab up in {up.Elapsed.TotalSeconds:0.0} s");
            var nodes = LabBench.LoadState(cli.LabDir).Nodes;
            if (nodes.Count != 2)
            {
                throw new BenchException($"the lab has {nodes.Count} nodes, not 2");
            }

            foreach (var (pod, node) in new[] { ("bench-a", nodes[0].Name), ("bench-b", nodes[1].Name) })
            {
                var add = await cli.LabAsync(["pod", "add", pod, "--node", node], TimeSpan.FromSeconds(60), ct).ConfigureAwait(false);
                if (!add.Ok)
                {
                    return NotWorking(result, $"pod add {pod} on {node} failed: {FirstError(add)}");
                }
            }

            var state = LabBench.LoadState(cli.LabDir);
            var (nodeA, nodeB) = (state.Node(nodes[0].Name), state.Node(nodes[1].Name));
            var podA = state.Pod("bench-a") ?? throw new BenchException("pod bench-a is not in the lab state");
            var podB = state.Pod("bench-b") ?? throw new BenchException("pod bench-b is not in the lab state");
            (result.PodA, result.PodB) = ($"{podA.Ip} on {podA.Node}", $"{podB.Ip} on {podB.Node}");
            var observed = PathCheck.Read(config, nodeA, nodeB, podA, podB);
            result.ObservedPath = observed.Description;
            Console.WriteLine($"   pods a {result.PodA}, b {result.PodB}; path: {observed.Description}");
            if (observed.Mismatches.Count > 0)
            {
                return NotWorking(result, "the lab did not build this datapath: " + string.Join("; ", observed.Mismatches));
            }

            Measure(result, options, nodeA, nodeB, podA, podB, ct);
        }
        catch (BenchException e)
        {
            result.Status = "error";
            result.Reason = e.Message;
            Console.WriteLine($"   ERROR: {e.Message}");
        }
        finally
        {
            result.LoadEnd = Machine.Describe().LoadAverage;
            // Not cancellable: an interrupted run still takes its lab down.
            var down = await cli.LabAsync(["down"], TimeSpan.FromSeconds(180), CancellationToken.None).ConfigureAwait(false);
            Console.WriteLine(down.Ok ? $"   lab down in {down.Elapsed.TotalSeconds:0.0} s" : $"   WARNING: {down}");
        }

        return result;
    }

    private static void Measure(ConfigResult result, DatapathOptions options, LabNode nodeA, LabNode nodeB, LabPod podA, LabPod podB, CancellationToken ct)
    {
        var servers = new List<IDisposable>();
        try
        {
            servers.Add(PingPongServer.Start(podB.Netns));
            servers.Add(PingPongServer.Start(nodeB.Netns));
            var podTarget = new IPEndPoint(IPAddress.Parse(PathCheck.Address(podB)), PingPongServer.Port);
            var nodeTarget = new IPEndPoint(IPAddress.Parse(nodeB.Ip), PingPongServer.Port);
            if (PingPong.TryOnce(nodeA.Netns, nodeTarget) is { } underlayError)
            {
                throw new BenchException($"the underlay does not work: {nodeA.Name} cannot reach {nodeTarget}: {underlayError}");
            }

            // Bounded: a path that does not work is a result (not working), never a hang.
            var reach = Stopwatch.StartNew();
            string? error;
            while ((error = PingPong.TryOnce(podA.Netns, podTarget)) is not null && reach.Elapsed.TotalSeconds < options.ReachTimeoutSeconds)
            {
                ct.ThrowIfCancellationRequested();
                Thread.Sleep(250);
            }

            if (error is not null)
            {
                NotWorking(result, $"pod a ({podA.Ip} on {podA.Node}) cannot reach pod b ({podTarget} on {podB.Node}) within {options.ReachTimeoutSeconds} s: {error}");
                return;
            }

            result.ReachS = reach.Elapsed.TotalSeconds;
            servers.Add(Iperf.StartServer(podB.Netns));
            servers.Add(Iperf.StartServer(nodeB.Netns));
            for (var rep = 0; rep < options.Reps; rep++)
            {
                // Each test runs on both paths back to back, the first path alternating between reps: the ratio of a
                // pair is taken over the same few seconds of a machine whose load drifts.
                var paths = new[] { ("underlay", nodeA.Netns, nodeTarget, result.Underlay), ("pods", podA.Netns, podTarget, result.Pods) };
                if (rep % 2 == 1)
                {
                    Array.Reverse(paths);
                }

                Console.Write($"   rep {rep + 1}/{options.Reps}:");
                foreach (var streams in new[] { 1, 4 })
                {
                    foreach (var (name, netns, target, series) in paths)
                    {
                        ct.ThrowIfCancellationRequested();
                        var run = Iperf.Client(netns, target.Address.ToString(), options.Seconds, streams);
                        (streams == 1 ? series.OneStream : series.FourStreams).Add(run);
                        Console.Write(string.Create(CultureInfo.InvariantCulture, $" {name} {run.Gbps:0.00}"));
                    }

                    Console.Write(streams == 1 ? " Gbit/s (1 stream);" : " Gbit/s (4 streams);");
                }

                foreach (var (name, netns, target, series) in paths)
                {
                    ct.ThrowIfCancellationRequested();
                    var rtt = PingPong.Measure(netns, target, TimeSpan.FromSeconds(options.LatencySeconds));
                    var stats = Stats.Of(rtt);
                    series.RttUs.AddRange(rtt);
                    series.RttP50PerRep.Add(stats.P50);
                    series.RttP99PerRep.Add(stats.P99);
                    Console.Write(string.Create(CultureInfo.InvariantCulture, $" {name} {stats.P50:0.0}"));
                }

                Console.WriteLine(" us (rtt p50)");
            }
        }
        finally
        {
            foreach (var s in servers)
            {
                s.Dispose();
            }
        }
    }

    private static ConfigResult NotWorking(ConfigResult result, string reason)
    {
        result.Status = "not working";
        result.Reason = reason;
        Console.WriteLine($"   NOT WORKING: {reason}");
        return result;
    }

    /// <summary>The CLI's first error line (its output ends with a usage or a log tail otherwise).</summary>
    private static string FirstError(CliRun run)
    {
        var lines = run.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var line = lines.FirstOrDefault(l => l.Contains("error", StringComparison.OrdinalIgnoreCase) || l.Contains("fail", StringComparison.OrdinalIgnoreCase))
            ?? lines.LastOrDefault() ?? "(no output)";
        return run.TimedOut ? $"killed after {run.Elapsed.TotalSeconds:0} s; {line}" : $"exit {run.ExitCode}: {line}";
    }
}
