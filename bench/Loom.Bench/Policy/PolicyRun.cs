using System.Diagnostics;
using System.Globalization;
using System.Net;
using Loom.Bench.LabScale;
using Loom.Bench.Services;
using Loom.Lab;
using Loom.Linux;

namespace Loom.Bench.Policy;

/// <summary>The measurements on a lab that is up: pods, ghosts, connection rate with and without policy, memory, apply to enforcement.</summary>
internal sealed class PolicyRun(PolicyOptions options, LoomCli cli, PolicyResults r, List<IDisposable> owned, CancellationToken ct)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private LabState _state = null!;

    public async Task RunAsync()
    {
        _state = LabBench.LoadState(cli.LabDir);
        var nodes = _state.Nodes.Select(n => n.Name).ToList();
        if (nodes.Count != 3)
        {
            throw new BenchException($"the lab has {nodes.Count} nodes, not 3");
        }

        // Client and server on different nodes; the intruder (no policy allows it) beside the client; the target of
        // the enforcement test on the third node, a prober on every node.
        var pods = new List<(string Name, string App, string Node)>
        {
            ("client", "client", nodes[0]), ("server", "server", nodes[1]), ("intruder", "intruder", nodes[0]), ("target", "target", nodes[2]),
        };
        pods.AddRange(nodes.Select(n => ("prober-" + n, "prober", n)));
        await Lab.Lab.ApplyAsync(_state, PolicyManifests.Setup(pods), TextWriter.Null, ct).ConfigureAwait(false);
        _state = LabBench.LoadState(cli.LabDir);
        foreach (var (name, _, _) in pods)
        {
            var p = Pod(name);
            r.Pods[name] = $"{p.Address} on {p.Node}";
        }

        Console.WriteLine($"   pods: {string.Join(", ", r.Pods.Select(kv => $"{kv.Key} {kv.Value}"))}");
        var server = Endpoint("server");
        var target = Endpoint("target");
        owned.Add(AnswerServer.Start(Handle("server"), PolicyManifests.Port, "srv\n"));
        owned.Add(AnswerServer.Start(Handle("target"), PolicyManifests.Port, "tgt\n"));
        var client = new Prober(nodes[0], Handle("client"), server);
        var intruder = new Prober(nodes[0], Handle("intruder"), server);
        await UntilAsync("client and intruder reach the server (no policy yet)", () => Connects(client) && Connects(intruder)).ConfigureAwait(false);

        await MemoryAsync(r.RssBeforeMiB, r.ManagedBeforeMiB).ConfigureAwait(false);

        await GhostsAsync().ConfigureAwait(false);
        await ConnectionRateAsync(client, intruder, server).ConfigureAwait(false);
        await ApplyToEnforcementAsync(target, nodes).ConfigureAwait(false);
    }

    private async Task GhostsAsync()
    {
        var sw = Stopwatch.StartNew();
        var store = await Lab.Lab.OpenStoreAsync(_state, ct).ConfigureAwait(false);
        await using (store.ConfigureAwait(false))
        {
            await Ghosts.CreateAsync(store, options.Ghosts, ct).ConfigureAwait(false);
        }

        r.GhostsS = sw.Elapsed.TotalSeconds;
        Console.Write($"   {options.Ghosts} ghost endpoints and identities written in {r.GhostsS:0.0} s; ipcache");
        sw.Restart();
        await UntilAsync($"every agent's ipcache holds the {options.Ghosts} ghosts", async () =>
        {
            foreach (var n in _state.Nodes)
            {
                r.Ipcache[n.Name] = await PolicyBench.IpcacheEntriesAsync(_state, n.Name, ct).ConfigureAwait(false) ?? -1;
            }

            return r.Ipcache.Values.All(v => v >= options.Ghosts);
        }, TimeSpan.FromSeconds(120)).ConfigureAwait(false);
        r.GhostsInIpcacheS = sw.Elapsed.TotalSeconds;
        Console.WriteLine($" {string.Join(", ", r.Ipcache.Select(kv => $"{kv.Key} {kv.Value}"))} entries after {r.GhostsInIpcacheS:0.0} s");
    }

    private async Task ConnectionRateAsync(Prober client, Prober intruder, IPEndPoint server)
    {
        var policies = PolicyManifests.GhostPolicies(options.Policies, options.Ghosts);
        var applied = false;
        var clientNs = Handle("client");
        for (var rep = 0; rep < options.Reps; rep++)
        {
            Console.Write($"   rep {rep + 1}/{options.Reps}:");
            var modes = rep % 2 == 0 ? new[] { "none", "policies" } : ["policies", "none"];
            foreach (var mode in modes)
            {
                applied = await SetPoliciesAsync(policies, mode == "policies", applied, client, intruder).ConfigureAwait(false);
                var cell = LoadGen.Run(clientNs, mode, [server], 1, options.Seconds, 10_000_000, 200, null, ct);
                r.Cells.Add((mode, rep, cell));
                Console.Write(string.Create(CultureInfo.InvariantCulture, $" {mode} {cell.Rate:0} conn/s (p50 {cell.Txn.P50:0.000} ms, {cell.Errors} errors);"));
                if (mode == "policies")
                {
                    // After the measurement too: the policies were in force all along, not only before it.
                    var denied = intruder.Denied(TimeSpan.FromSeconds(1), ct);
                    r.EnforcementChecks.Add($"rep {rep + 1}: intruder -> server {(denied ? "denied (as it must)" : "CONNECTED: policy not enforced")}");
                    if (!denied)
                    {
                        r.Failures.Add($"rep {rep + 1}: the intruder reached the server with the {options.Policies} policies applied");
                    }

                    Console.Write(denied ? " intruder denied;" : " INTRUDER CONNECTED;");
                }
            }

            Console.WriteLine();
        }

        // Memory with the ghosts' identities and the policies in place (after at least 2 s for the agents to settle).
        applied = await SetPoliciesAsync(policies, true, applied, client, intruder).ConfigureAwait(false);
        await Task.Delay(TimeSpan.FromSeconds(2), ct).ConfigureAwait(false);
        await MemoryAsync(r.RssAfterMiB, r.ManagedAfterMiB).ConfigureAwait(false);

        await SetPoliciesAsync(policies, false, applied, client, intruder).ConfigureAwait(false);
    }

    /// <summary>Applies or deletes the 100 policies and waits until the verdicts show it; returns whether they are applied.</summary>
    private async Task<bool> SetPoliciesAsync(string policies, bool want, bool applied, Prober client, Prober intruder)
    {
        if (want == applied)
        {
            return applied;
        }

        var sw = Stopwatch.StartNew();
        if (want)
        {
            await Lab.Lab.ApplyAsync(_state, policies, TextWriter.Null, ct).ConfigureAwait(false);
            r.PoliciesApplyMs.Add(sw.Elapsed.TotalMilliseconds);
            await UntilAsync("the policies in force (client passes, intruder denied)", () => Connects(client) && intruder.Denied(TimeSpan.FromMilliseconds(500), ct)).ConfigureAwait(false);
            r.PoliciesEnforcedMs.Add(sw.Elapsed.TotalMilliseconds);
        }
        else
        {
            await Lab.Lab.DeleteAsync(_state, policies, TextWriter.Null, ct).ConfigureAwait(false);
            await UntilAsync("the policies gone (intruder passes)", () => Connects(intruder)).ConfigureAwait(false);
        }

        return want;
    }

    private async Task ApplyToEnforcementAsync(IPEndPoint target, List<string> nodes)
    {
        var probers = nodes.Select(n => new Prober(n, Handle("prober-" + n), target)).ToList();
        foreach (var n in nodes)
        {
            r.ApplyToEnforced[n] = [];
        }

        await Lab.Lab.ApplyAsync(_state, PolicyManifests.DenyTarget(), TextWriter.Null, ct).ConfigureAwait(false);
        long ignored = 0;
        await UntilAsync("deny-all on the target in force for every prober", () => AllDenied(probers, ref ignored)).ConfigureAwait(false);
        var scrapes = _state.Nodes.ToDictionary(n => n.Name, n => new AgentScrape(n.Netns, n.Ip));
        try
        {
            var before = new Dictionary<string, Histogram?>();
            foreach (var (name, s) in scrapes)
            {
                before[name] = (await s.TryReadAsync(ct).ConfigureAwait(false))?.Histogram("loom_policy_pass_seconds");
            }

            Console.Write($"   apply -> enforced ({options.Repeats} cycles):");
            var allow = PolicyManifests.AllowProbers();
            var freq = (double)Stopwatch.Frequency;
            for (var k = 0; k < options.Repeats; k++)
            {
                using var started = new CountdownEvent(probers.Count);
                var limit = TimeSpan.FromSeconds(10);
                var runs = probers.Select(p => Task.Factory.StartNew(() => p.UntilConnected(limit, ct, out _, started), ct, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToList();
                started.Wait(ct);
                var t0 = Stopwatch.GetTimestamp();
                await Lab.Lab.ApplyAsync(_state, allow, TextWriter.Null, ct).ConfigureAwait(false);
                r.AllowApplyCallMs.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                var done = await Task.WhenAll(runs).ConfigureAwait(false);
                for (var i = 0; i < probers.Count; i++)
                {
                    if (done[i] is { } at)
                    {
                        r.ApplyToEnforced[probers[i].Node].Add((at - t0) * 1000.0 / freq);
                    }
                    else
                    {
                        r.Failures.Add($"cycle {k + 1}: no connection from {probers[i].Node} within {limit.TotalSeconds:0} s of the apply");
                    }
                }

                Console.Write(string.Create(CultureInfo.InvariantCulture, $" {done.Select(d => d is { } at ? ((at - t0) * 1000.0 / freq).ToString("0", CultureInfo.InvariantCulture) : "-").Aggregate((a, b) => a + "/" + b)}"));
                // The deny is in force somewhere between the last connection that passed and the quiet 300 ms after it.
                var t1 = Stopwatch.GetTimestamp();
                var lastPassed = t1;
                await Lab.Lab.DeleteAsync(_state, allow, TextWriter.Null, ct).ConfigureAwait(false);
                await UntilAsync("denied again after the allow's delete", () => AllDenied(probers, ref lastPassed), poll: TimeSpan.Zero).ConfigureAwait(false);
                r.DeleteToDeniedMs.Add((lastPassed - t1) * 1000.0 / freq);
            }

            Console.WriteLine(" ms (per node: " + string.Join("/", nodes) + ")");
            foreach (var (name, s) in scrapes)
            {
                if ((await s.TryReadAsync(ct).ConfigureAwait(false))?.Histogram("loom_policy_pass_seconds") is { } after)
                {
                    var h = after.Since(before[name]);
                    r.AgentPass[name] = (h.Count, h.Quantile(0.5) * 1000, h.Quantile(0.99) * 1000);
                }
            }
        }
        finally
        {
            foreach (var s in scrapes.Values)
            {
                s.Dispose();
            }
        }
    }

    /// <summary>Each agent's VmRSS, and its managed heap as its metrics say (dotnet_total_memory_bytes: garbage not yet collected included).</summary>
    private async Task MemoryAsync(Dictionary<string, double> rss, Dictionary<string, double> managed)
    {
        foreach (var n in _state.Nodes)
        {
            rss[n.Name] = PolicyBench.AgentRssMiB(n);
            using var scrape = new AgentScrape(n.Netns, n.Ip);
            managed[n.Name] = (await scrape.TryReadAsync(ct).ConfigureAwait(false))?.Value("dotnet_total_memory_bytes") / (1024.0 * 1024.0) ?? double.NaN;
        }
    }

    /// <summary>
    /// No prober connects within 300 ms (the three watched at once). <paramref name="lastPassed"/> keeps the latest
    /// Stopwatch timestamp at which one did connect.
    /// </summary>
    private bool AllDenied(List<Prober> probers, ref long lastPassed)
    {
        var passed = Task.WhenAll(probers.Select(p => Task.Factory.StartNew(() => p.UntilConnected(TimeSpan.FromMilliseconds(300), ct, out _), ct,
            TaskCreationOptions.LongRunning, TaskScheduler.Default))).GetAwaiter().GetResult();
        lastPassed = Math.Max(lastPassed, passed.Max(t => t ?? 0));
        return passed.All(t => t is null);
    }

    private bool Connects(Prober p) => p.UntilConnected(TimeSpan.FromSeconds(1), ct, out _) is not null;

    /// <summary>Polls <paramref name="check"/> until it holds; a BenchException naming it after the bound.</summary>
    private async Task UntilAsync(string what, Func<bool> check, TimeSpan? bound = null, TimeSpan? poll = null) =>
        await UntilAsync(what, () => Task.FromResult(check()), bound, poll).ConfigureAwait(false);

    private async Task UntilAsync(string what, Func<Task<bool>> check, TimeSpan? bound = null, TimeSpan? poll = null)
    {
        var deadline = Stopwatch.StartNew();
        while (!await check().ConfigureAwait(false))
        {
            ct.ThrowIfCancellationRequested();
            if (deadline.Elapsed > (bound ?? Bound))
            {
                throw new BenchException($"not within {(bound ?? Bound).TotalSeconds:0} s: {what}");
            }

            await Task.Delay(poll ?? TimeSpan.FromMilliseconds(100), ct).ConfigureAwait(false);
        }
    }

    private LabPod Pod(string name) =>
        _state.Pod(PolicyManifests.Namespace, name) ?? throw new BenchException($"pod {PolicyManifests.Namespace}/{name} is not in the lab state");

    private IPEndPoint Endpoint(string pod) =>
        new(Pod(pod).Address ?? throw new BenchException($"pod {pod} has no address"), PolicyManifests.Port);

    private readonly Dictionary<string, NetNsHandle> _handles = [];

    private NetNsHandle Handle(string pod)
    {
        if (!_handles.TryGetValue(pod, out var h))
        {
            h = NetNs.Open(Pod(pod).Netns);
            _handles[pod] = h;
            owned.Add(h);
        }

        return h;
    }
}
