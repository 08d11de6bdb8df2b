using System.Diagnostics;
using System.Globalization;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Lab;
using Loom.Linux;

namespace Loom.Bench.LabScale;

/// <summary>One backend's run: its lab up, the timed apply and catch-up, the agents' memory, the probes, lab down.</summary>
internal static class BackendRun
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(250);

    public static async Task<BackendResult> RunAsync(ServiceProxyMode backend, LabBenchOptions options, CancellationToken ct)
    {
        var name = LabBenchOptions.Name(backend);
        var prefix = RunPrefix.For(LabBench.Base) + LabBench.Key(backend) + "-";
        var cli = new LoomCli(Path.Combine(Path.GetTempPath(), prefix + "lab"), prefix);
        var result = new BackendResult { Backend = name, Prefix = prefix, LoadStart = Machine.Describe().LoadAverage };
        var scrapes = new List<AgentScrape>();
        Console.WriteLine();
        Console.WriteLine($"== {name}: lab {prefix}* in {cli.LabDir}");
        try
        {
            var up = await cli.LabAsync(["up", "--service-backend", name, "--no-dns", "--timeout", "180"], TimeSpan.FromSeconds(300), ct).ConfigureAwait(false);
            result.UpS = up.Elapsed.TotalSeconds;
            Expect(up, "lab up");
            Console.WriteLine($"   lab up in {up.Elapsed.TotalSeconds:0.0} s");
            Expect(await cli.LabAsync(["apply", "-f", "-"], TimeSpan.FromSeconds(180), ct, ScaleManifest.Clients(LabBench.LoadState(cli.LabDir).Nodes.Select(n => n.Name)))
                .ConfigureAwait(false), "apply of the client pods");
            var state = LabBench.LoadState(cli.LabDir);
            scrapes.AddRange(state.Nodes.Select(n => new AgentScrape(n.Netns, n.Ip)));
            result.Nodes.AddRange(state.Nodes.Select(n => new NodeResult { Node = n.Name }));
            var store = await Lab.Lab.OpenStoreAsync(state, ct).ConfigureAwait(false);
            await using (store.ConfigureAwait(false))
            {
                var (before, _) = await store.ListAsync(Kinds.Service, ct).ConfigureAwait(false);
                result.ExpectedServicePorts = before.Sum(s => s.Value.Ports.Count) + options.Services;
                result.ExpectedEndpoints = await EndpointsNowAsync(scrapes, ct).ConfigureAwait(false) + (2 * ScaleManifest.WithEndpoints(options.Services));
                await ApplyAndCatchUpAsync(cli, state, scrapes, result, options, ct).ConfigureAwait(false);
                result.ServicesInStore = (await store.ListAsync(Kinds.Service, ct).ConfigureAwait(false)).Items.Count - before.Count;
                if (result.AllCaughtUpS is null)
                {
                    result.Status = "timeout";
                    return result;
                }

                if (options.Probes > 0)
                {
                    await EventProbes.RunAsync(store, state, scrapes, result, options, ct).ConfigureAwait(false);
                }

                ReadMemory(state, result, end: true);
            }
        }
        catch (BenchException e)
        {
            result.Status = "error";
            result.Error = e.Message;
            Console.WriteLine($"   ERROR: {e.Message}");
        }
        finally
        {
            foreach (var s in scrapes)
            {
                s.Dispose();
            }

            result.LoadEnd = Machine.Describe().LoadAverage;
            // Not cancellable: an interrupted run still takes its lab down.
            var down = await cli.LabAsync(["down"], TimeSpan.FromSeconds(180), CancellationToken.None).ConfigureAwait(false);
            Console.WriteLine(down.Ok ? $"   lab down in {down.Elapsed.TotalSeconds:0.0} s" : $"   WARNING: {down}");
        }

        return result;
    }

    /// <summary>
    /// The timed part: <c>loom lab apply</c> of the manifest while the agents' loom_services gauges are read every
    /// 250 ms; done when every agent reports every service port, or at the backend's timeout.
    /// </summary>
    private static async Task ApplyAndCatchUpAsync(LoomCli cli, LabState state, List<AgentScrape> scrapes, BackendResult result,
        LabBenchOptions options, CancellationToken ct)
    {
        var manifest = Path.Combine(cli.LabDir, "bench-services.yaml");
        await File.WriteAllTextAsync(manifest, ScaleManifest.Services(options.Services), ct).ConfigureAwait(false);
        var timeout = TimeSpan.FromSeconds(options.TimeoutSeconds);
        var clock = Stopwatch.StartNew();
        using var stopPoll = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var poller = PollCatchUpAsync(state, scrapes, result, clock, stopPoll.Token);
        Console.WriteLine($"   applying {options.Services} Services (expecting {result.ExpectedServicePorts} service ports, {result.ExpectedEndpoints} endpoints on every node) ...");
        // An agent that dies fails the poller: stop the apply then rather than at the timeout.
        using var applyCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        _ = poller.ContinueWith(_ => applyCts.Cancel(), CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        CliRun apply;
        try
        {
            apply = await cli.LabAsync(["apply", "-f", manifest], timeout, applyCts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested && poller.IsFaulted)
        {
            await poller.ConfigureAwait(false); // throws the poller's BenchException
            throw;
        }

        result.ApplyS = apply.Elapsed.TotalSeconds;
        result.ApplyStatus = apply.Ok ? "ok" : apply.TimedOut ? "timeout" : "failed";
        Console.WriteLine($"   apply {result.ApplyStatus} in {apply.Elapsed.TotalSeconds:0.0} s; nodes caught up so far: {CaughtUp(result)}");
        if (!apply.Ok && !apply.TimedOut)
        {
            stopPoll.Cancel();
            throw new BenchException($"lab apply failed: {apply}");
        }

        var left = timeout - clock.Elapsed;
        if (!apply.TimedOut && left > TimeSpan.Zero && !poller.IsCompleted)
        {
            await Task.WhenAny(poller, Task.Delay(left, ct)).ConfigureAwait(false);
        }

        await stopPoll.CancelAsync().ConfigureAwait(false);
        try
        {
            await poller.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            // stopped at the timeout
        }

        var caught = result.Nodes.Select(n => n.CaughtUpS).ToList();
        result.AllCaughtUpS = caught.All(c => c is not null) ? caught.Max() : null;
        Console.WriteLine(result.AllCaughtUpS is { } all
            ? $"   every agent caught up {all:0.0} s after the apply started ({CaughtUp(result)})"
            : $"   TIMEOUT after {options.TimeoutSeconds} s: {CaughtUp(result)}");
        ReadMemory(state, result, end: false);
        foreach (var (node, scrape) in result.Nodes.Zip(scrapes))
        {
            if (await scrape.TryReadAsync(ct).ConfigureAwait(false) is { } m)
            {
                node.Syncs = m.Value("loom_service_syncs_total");
                node.SyncSeconds = m.Value("loom_service_sync_duration_seconds_sum");
            }
        }
    }

    private static async Task PollCatchUpAsync(LabState state, List<AgentScrape> scrapes, BackendResult result, Stopwatch clock, CancellationToken ct)
    {
        var last = new (double?, double?)[scrapes.Count];
        while (result.Nodes.Any(n => n.CaughtUpS is null))
        {
            for (var i = 0; i < scrapes.Count; i++)
            {
                var node = result.Nodes[i];
                if (node.CaughtUpS is not null)
                {
                    continue;
                }

                if (state.Nodes[i].AgentPid is { } pid && !LabProcesses.IsAlive(pid))
                {
                    var log = Path.Combine(state.NodeDir(node.Node), "agent.log");
                    throw new BenchException($"the agent on {node.Node} (pid {pid}) died; {log}:\n{Lab.Lab.LogTail(log)}");
                }

                var m = await scrapes[i].TryReadAsync(ct).ConfigureAwait(false);
                var ports = m?.Value("loom_services");
                var endpoints = m?.Value("loom_service_endpoints");
                if (m is not null && (ports is null || endpoints is null))
                {
                    throw new BenchException($"the agent on {node.Node} exports no loom_services or loom_service_endpoints gauge: cannot tell when it has caught up");
                }

                if (ports is { } v && (ports, endpoints) != last[i])
                {
                    last[i] = (ports, endpoints);
                    (node.ServicePorts, node.Endpoints) = (v, endpoints);
                    result.Timeline.Add(new GaugePoint(Math.Round(clock.Elapsed.TotalSeconds, 3), node.Node, v, endpoints));
                    if (v >= result.ExpectedServicePorts && endpoints >= result.ExpectedEndpoints)
                    {
                        node.CaughtUpS = clock.Elapsed.TotalSeconds;
                    }
                }
            }

            await Task.Delay(Poll, ct).ConfigureAwait(false);
        }
    }

    /// <summary>The most loom_service_endpoints any agent reports now (what the lab holds before the apply).</summary>
    private static async Task<int> EndpointsNowAsync(List<AgentScrape> scrapes, CancellationToken ct)
    {
        var most = 0.0;
        foreach (var s in scrapes)
        {
            most = Math.Max(most, (await s.TryReadAsync(ct).ConfigureAwait(false))?.Value("loom_service_endpoints") ?? 0);
        }

        return (int)most;
    }

    /// <summary>VmRSS and VmHWM of each node's agent (the pid the lab recorded).</summary>
    private static void ReadMemory(LabState state, BackendResult result, bool end)
    {
        foreach (var (node, labNode) in result.Nodes.Zip(state.Nodes))
        {
            if (labNode.AgentPid is not { } pid)
            {
                continue;
            }

            double? rss = null, hwm = null;
            try
            {
                foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                {
                    rss = line.StartsWith("VmRSS:", StringComparison.Ordinal) ? Kb(line) : rss;
                    hwm = line.StartsWith("VmHWM:", StringComparison.Ordinal) ? Kb(line) : hwm;
                }
            }
            catch (IOException)
            {
                // the agent is gone: no figure
            }

            if (end)
            {
                (node.RssEndMb, node.PeakRssEndMb) = (rss, hwm);
            }
            else
            {
                (node.RssMb, node.PeakRssMb) = (rss, hwm);
            }
        }
    }

    private static double Kb(string line) =>
        Math.Round(double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024, 1);

    private static string CaughtUp(BackendResult result) =>
        string.Join(", ", result.Nodes.Select(n => $"{n.Node} {(n.CaughtUpS is { } s ? s.ToString("0.0", CultureInfo.InvariantCulture) + " s" : $"{n.ServicePorts ?? 0:0}/{result.ExpectedServicePorts} ports, {n.Endpoints ?? 0:0}/{result.ExpectedEndpoints} endpoints")}"));

    private static void Expect(CliRun run, string what)
    {
        if (!run.Ok)
        {
            throw new BenchException($"{what} failed: {run}");
        }
    }
}
