using System.Diagnostics;
using System.Globalization;
using System.Net;
using Loom.Core.Model;
using Loom.Core.Reconcile;
using Loom.Datapath.Services;
using Loom.Datapath.Services.Ebpf;
using Loom.Datapath.Tests.Ebpf;
using Loom.Linux.Bpf;
using Loom.Testing;
using Xunit.Abstractions;

namespace Loom.Datapath.Tests;

/// <summary>
/// One pod's address changes with N Services x 4 endpoints programmed (issue 11: "one endpoint change with 10,000
/// services on eBPF &lt;= 1 ms p50 from store event to map write"), timed three ways on the real backend in a
/// namespace of this run's own: <b>before</b>, the old per-event path (ServiceModel.Compute over every Service and
/// Endpoint, then Sync of all ports); <b>after</b>, ServiceTable.SetEndpoint + Drain + Update of the changed ports;
/// <b>reconciler</b>, the same through a Reconciler holding all N rows whose batch operations call Update, as the
/// agent does, timed from SetEndpoint to the end of the write. Prints p50 / p99 and after / before; asserts nothing
/// about time (it checks that the change reached the backend). Run with <c>LOOM_SYNC_PERF=1000,10000
/// LOOM_SYNC_PERF_BACKENDS=ebpf,iptables,nftables dotnet test tests/Loom.Datapath.Tests -c Release --no-build
/// --filter Category=SyncPerf&amp;FullyQualifiedName~EndpointChange --logger "console;verbosity=detailed"</c>;
/// LOOM_SYNC_PERF_SAMPLES (51) and LOOM_SYNC_PERF_BUDGET (seconds per cell, 120) bound each cell.
/// </summary>
[Trait("Category", "SyncPerf")]
public sealed class EndpointChangePerfTests(ITestOutputHelper output)
{
    private const int PerService = 4;

    [SyncPerfFact]
    public async Task EndpointChange()
    {
        var backends = (Environment.GetEnvironmentVariable("LOOM_SYNC_PERF_BACKENDS") ?? "ebpf").Split(',');
        output.WriteLine($"load average at start {File.ReadAllText("/proc/loadavg").Trim()}, {Environment.ProcessorCount} CPUs");
        foreach (var n in Environment.GetEnvironmentVariable("LOOM_SYNC_PERF")!.Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)))
        {
            foreach (var name in backends)
            {
                await MeasureAsync(name, n);
            }
        }

        output.WriteLine($"load average at end {File.ReadAllText("/proc/loadavg").Trim()}");
    }

    private async Task MeasureAsync(string name, int n)
    {
        using var ns = new TestNetns("epc");
        var pins = Path.Combine(BpfFs.DefaultRoot, EbpfLab.UniqueName("epc"));
        IServiceBackend backend = name switch
        {
            "ebpf" => new EbpfServiceBackend(new EbpfServiceOptions { PinDirectory = pins, ObjectDirectory = EbpfLab.ObjectDirectory }),
            "iptables" => ServiceBackends.Iptables(null),
            "nftables" => ServiceBackends.Nftables(null),
            _ => throw new ArgumentException($"LOOM_SYNC_PERF_BACKENDS: unknown backend '{name}' (ebpf, iptables, nftables)"),
        };
        try
        {
            var services = Services(n);
            var pods = Pods(n);
            var table = new ServiceTable();
            foreach (var s in services)
            {
                table.SetService(ObjectKey.Of(s.Namespace, s.Name), s);
            }

            foreach (var p in pods)
            {
                table.SetEndpoint(ObjectKey.Of(p.Namespace, p.Name), p);
            }

            var initial = table.Drain().Upserts;
            if (initial.Count != n || initial.Any(s => s.Backends.Count != PerService))
            {
                throw new InvalidOperationException($"the table programs {initial.Count} ports, expected {n} of {PerService} endpoints");
            }

            // Pod 0 (an endpoint of svc0) moves between its address and this one; every sample is one such move.
            var original = pods[0];
            var moved = original with { IPs = [IPAddress.Parse("10.250.0.1")] };
            var podKey = ObjectKey.Of(original.Namespace, original.Name);
            Endpoint Pod(int i) => i % 2 == 0 ? moved : original;

            var first = Ms(() => ns.Run(() => backend.Sync(initial)));
            Line(name, n, "first sync (all)", [first]);

            // Before: the whole model recomputed and every port handed to Sync, per event. Each loop runs on one thread
            // inside the namespace (NetNs.Run starts a thread: not a cost to put in a sample).
            var before = ns.Run(() => Samples(i =>
            {
                pods[0] = Pod(i);
                backend.Sync(ServiceModel.Compute(services, pods));
            }));

            // The table and the backend agree again (the last "before" sample may have left pod 0 moved).
            table.SetEndpoint(podKey, pods[0]);
            ns.Run(() => backend.Update(table.Drain().Upserts, []));

            // After: only the table's change, written with Update.
            var phase = pods[0] == moved ? 1 : 0;
            var after = ns.Run(() => Samples(i =>
            {
                table.SetEndpoint(podKey, Pod(i + phase));
                var delta = table.Drain();
                if (delta.Upserts.Count != 1 || delta.Removed.Count != 0)
                {
                    throw new InvalidOperationException($"one endpoint moved but the table changed {delta.Upserts.Count} port(s) and removed {delta.Removed.Count}");
                }

                backend.Update(delta.Upserts, []);
            }));
            phase = (phase + after.Length) % 2;

            var viaReconciler = await ThroughReconcilerAsync(ns, backend, table, podKey, i => Pod(i + phase));
            Line(name, n, "before: compute+Sync", before);
            Line(name, n, "after: table+Update", after);
            Line(name, n, "after: via reconciler", viaReconciler);
            Ratio(name, n, "table+Update / before", after, before);
            Ratio(name, n, "reconciler / before", viaReconciler, before);
        }
        finally
        {
            if (backend is EbpfServiceBackend e)
            {
                e.Dispose();
                BpfFs.RemoveTree(pins);
            }
        }
    }

    /// <summary>
    /// The Reconciler's own share at each N (no kernel): N rows written, then one row changed per sample, timed from
    /// Upsert until the worker hands the batch to the operations (a no-op), and Stats read once per sample as the agent does.
    /// </summary>
    [SyncPerfFact]
    public async Task ReconcilerRound()
    {
        foreach (var n in Environment.GetEnvironmentVariable("LOOM_SYNC_PERF")!.Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)))
        {
            var ops = new NoopOperations();
            var reconciler = new Reconciler<int, int>(ops, TimeProvider.System, new ReconcilerOptions { Name = "perf" });
            using var stop = new CancellationTokenSource();
            var worker = reconciler.RunAsync(stop.Token);
            for (var i = 0; i < n; i++)
            {
                reconciler.Upsert(i, 0);
            }

            await reconciler.WaitIdleAsync();
            var round = new List<double>();
            var stats = new List<double>();
            for (var i = 1; i <= 203; i++)
            {
                var start = Stopwatch.GetTimestamp();
                var called = ops.Expect();
                reconciler.Upsert(0, i);
                var end = await called.WaitAsync(TimeSpan.FromSeconds(60));
                await reconciler.WaitIdleAsync();
                var s = Stopwatch.GetTimestamp();
                var pending = reconciler.Stats.Pending;
                var ms = Stopwatch.GetElapsedTime(s).TotalMilliseconds;
                if (pending != 0 || ops.Rows != 1)
                {
                    throw new InvalidOperationException($"after one change: {pending} pending, a batch of {ops.Rows} row(s)");
                }

                if (i > 3)
                {
                    round.Add(Stopwatch.GetElapsedTime(start, end).TotalMilliseconds);
                    stats.Add(ms);
                }
            }

            await stop.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => worker);
            Line("reconcile", n, "Upsert -> batch", [.. round]);
            Line("reconcile", n, "Stats", [.. stats]);
        }
    }

    /// <summary>
    /// A Reconciler of string -> ServicePortState holding every port as a row (written with one Sync), then one
    /// endpoint move per sample: SetEndpoint, Drain, Upsert of the changed rows, and the worker's batch calling Update.
    /// A sample ends when Update returns, measured on the worker's thread.
    /// </summary>
    private static async Task<double[]> ThroughReconcilerAsync(TestNetns ns, IServiceBackend backend, ServiceTable table, string podKey, Func<int, Endpoint> pod)
    {
        // eBPF maps are not per namespace; the rule backends' tools inherit the calling thread's one.
        Reconciler<string, ServicePortState>? reconciler = null;
        var ops = new UpdateOperations(backend, backend is EbpfServiceBackend ? null : ns, () => reconciler!.Desired);
        reconciler = new Reconciler<string, ServicePortState>(ops, TimeProvider.System, new ReconcilerOptions { Name = "perf" });
        using var stop = new CancellationTokenSource();
        var worker = reconciler.RunAsync(stop.Token);
        try
        {
            foreach (var (key, state) in table.Programmed)
            {
                reconciler.Upsert(key, state);
            }

            await reconciler.WaitIdleAsync();
            var samples = new List<double>();
            var budget = Stopwatch.StartNew();
            for (var i = 0; i < Count && (budget.Elapsed < Budget || samples.Count < 3); i++)
            {
                var start = Stopwatch.GetTimestamp();
                var written = ops.Expect();
                table.SetEndpoint(podKey, pod(i));
                var delta = table.Drain();
                foreach (var state in delta.Upserts)
                {
                    reconciler.Upsert(ServiceTable.PortKey(state), state);
                }

                var end = await written.WaitAsync(TimeSpan.FromSeconds(120));
                samples.Add(Stopwatch.GetElapsedTime(start, end).TotalMilliseconds);
            }

            await reconciler.WaitIdleAsync();
            if (reconciler.Stats.Errors > 0 || ops.Rows != 1)
            {
                throw new InvalidOperationException($"reconciler: {reconciler.Stats.Errors} error(s), last batch of {ops.Rows} row(s)");
            }

            return [.. samples];
        }
        finally
        {
            await stop.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => worker);
        }
    }

    private static int Count => int.Parse(Environment.GetEnvironmentVariable("LOOM_SYNC_PERF_SAMPLES") ?? "51", CultureInfo.InvariantCulture);

    private static TimeSpan Budget => TimeSpan.FromSeconds(int.Parse(Environment.GetEnvironmentVariable("LOOM_SYNC_PERF_BUDGET") ?? "120", CultureInfo.InvariantCulture));

    // Up to Count samples (a few warm-up ones first, untimed), stopping early once the budget is spent.
    private static double[] Samples(Action<int> sample)
    {
        for (var i = 0; i < 2; i++)
        {
            sample(i);
        }

        var ms = new List<double>();
        var budget = Stopwatch.StartNew();
        for (var i = 0; i < Count && (budget.Elapsed < Budget || ms.Count < 3); i++)
        {
            ms.Add(Ms(() => sample(i)));
        }

        return [.. ms];
    }

    private static double Ms(Action action)
    {
        var sw = Stopwatch.StartNew();
        action();
        return sw.Elapsed.TotalMilliseconds;
    }

    private static double P(double[] sorted, double q) => sorted[Math.Max(0, (int)Math.Ceiling(q * sorted.Length) - 1)];

    private void Line(string name, int n, string what, double[] ms)
    {
        Array.Sort(ms);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name,-9} N={n,-6} {what,-24} p50 {P(ms, 0.5),10:F3} ms  p99 {P(ms, 0.99),10:F3} ms  ({ms.Length} samples)"));
    }

    private void Ratio(string name, int n, string what, double[] after, double[] before)
    {
        Array.Sort(after);
        Array.Sort(before);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name,-9} N={n,-6} {what,-24} p50 {P(after, 0.5) / P(before, 0.5),9:F4}x    p99 {P(after, 0.99) / P(before, 0.99),9:F4}x"));
    }

    // N Services svcI (ClusterIP 10.96.x.y:80 -> 8080), each selecting app=svcI.
    private static List<Service> Services(int n) =>
        [.. Enumerable.Range(0, n).Select(i => new Service
        {
            Namespace = "perf", Name = "svc" + i.ToString(CultureInfo.InvariantCulture),
            ClusterIp = new IPAddress([10, 96, (byte)(i / 250), (byte)(i % 250 + 1)]),
            Ports = [new ServicePort("http", Protocol.Tcp, 80, 8080)],
            Selector = new Dictionary<string, string> { ["app"] = "svc" + i.ToString(CultureInfo.InvariantCulture) },
        })];

    // N x 4 ready pods; pod j is an endpoint of svc(j mod N).
    private static List<Endpoint> Pods(int n) =>
        [.. Enumerable.Range(0, n * PerService).Select(j => new Endpoint
        {
            Namespace = "perf", Name = "pod" + j.ToString(CultureInfo.InvariantCulture), Node = "n1", ContainerId = "c" + j.ToString(CultureInfo.InvariantCulture),
            IPs = [new IPAddress([10, (byte)(244 + (j / 62500)), (byte)(j / 250 % 250), (byte)(j % 250 + 1)])],
            Labels = new Dictionary<string, string> { ["app"] = "svc" + (j % n).ToString(CultureInfo.InvariantCulture) },
            Ready = true,
        })];

    /// <summary>The agent's batch target reduced to the backend call: Sync of every desired row while the backend needs it, else Update.</summary>
    private sealed class UpdateOperations(IServiceBackend backend, TestNetns? ns, Func<IReadOnlyDictionary<string, ServicePortState>> desired) : IBatchReconcileOperations<string, ServicePortState>
    {
        private readonly Dictionary<string, ServicePortState> _applied = new(StringComparer.Ordinal);
        private TaskCompletionSource<long>? _written;

        public int Rows { get; private set; }

        /// <summary>Completes with the Stopwatch timestamp at which the next batch's write returned.</summary>
        public Task<long> Expect()
        {
            _written = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            return _written.Task;
        }

        public Task ApplyBatchAsync(IReadOnlyList<RowChange<string, ServicePortState>> changes, CancellationToken cancellationToken)
        {
            var changed = changes.Where(c => !c.IsDelete).Select(c => c.Value!).ToList();
            var removed = changes.Where(c => c.IsDelete && _applied.ContainsKey(c.Key)).Select(c => _applied[c.Key]).ToList();
            void Write()
            {
                if (backend.NeedsFullSync)
                {
                    backend.Sync([.. desired().Values]);
                }
                else
                {
                    backend.Update(changed, removed);
                }
            }

            if (ns is null)
            {
                Write();
            }
            else
            {
                ns.Run(Write);
            }

            var end = Stopwatch.GetTimestamp();
            foreach (var c in changes)
            {
                if (c.IsDelete)
                {
                    _applied.Remove(c.Key);
                }
                else
                {
                    _applied[c.Key] = c.Value!;
                }
            }

            Rows = changes.Count;
            _written?.TrySetResult(end);
            return Task.CompletedTask;
        }

        public Task UpdateAsync(string key, ServicePortState value, CancellationToken cancellationToken) =>
            ApplyBatchAsync([new RowChange<string, ServicePortState>(key, value, false)], cancellationToken);

        public Task DeleteAsync(string key, CancellationToken cancellationToken) =>
            ApplyBatchAsync([new RowChange<string, ServicePortState>(key, null, true)], cancellationToken);

        public Task<int> PruneAsync(IReadOnlyDictionary<string, ServicePortState> desired, CancellationToken cancellationToken) => Task.FromResult(0);
    }

    private sealed class NoopOperations : IBatchReconcileOperations<int, int>
    {
        private TaskCompletionSource<long>? _called;

        public int Rows { get; private set; }

        public Task<long> Expect()
        {
            _called = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            return _called.Task;
        }

        public Task ApplyBatchAsync(IReadOnlyList<RowChange<int, int>> changes, CancellationToken cancellationToken)
        {
            Rows = changes.Count;
            _called?.TrySetResult(Stopwatch.GetTimestamp());
            return Task.CompletedTask;
        }

        public Task UpdateAsync(int key, int value, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task DeleteAsync(int key, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task<int> PruneAsync(IReadOnlyDictionary<int, int> desired, CancellationToken cancellationToken) => Task.FromResult(0);
    }
}
