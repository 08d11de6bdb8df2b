using System.Diagnostics;
using System.Net;
using Loom.Core.AgentApi;
using Loom.Core.Model;
using Loom.Core.Store;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace Loom.Lab.Tests.Reliability;

/// <summary>
/// One SQLite lab (the scenario's webpod on k8s-w1 and k8s-w2, curl-pod on k8s-ctr) for the store-outage checks.
/// </summary>
public sealed class StoreOutageSqliteLab : IAsyncLifetime
{
    private LabOptions? _options;
    private LabState? _state;

    public LabState State => _state ?? throw new InvalidOperationException("the lab is not up");

    public async Task InitializeAsync()
    {
        _options = TestLab.Options(agents: true);
        try
        {
            _state = await Lab.UpAsync(_options, TextWriter.Null);
            await Lab.ApplyAsync(_state, ManifestTests.Example("webpod.yaml"), TextWriter.Null);
            await Lab.ApplyAsync(_state, ManifestTests.Example("curl-pod.yaml"), TextWriter.Null);
        }
        catch
        {
            await Lab.DownAsync(_options.LabDir, _options.Prefix);
            _options = null;
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        SqliteConnection.ClearAllPools();
        if (_options is not null)
        {
            await Lab.DownAsync(_options.LabDir, _options.Prefix);
        }
    }
}

/// <summary>
/// The SQLite store locked for 30 s by another process (BEGIN EXCLUSIVE: every write waits, as behind a stuck writer):
/// a probe through a Service from a pod loses nothing, every agent says the store is unreachable, and a Service made
/// right after the lock is applied.
/// </summary>
[Collection(SequentialLab.Name)]
public sealed class StoreOutageSqliteTests(StoreOutageSqliteLab lab, ITestOutputHelper output) : IClassFixture<StoreOutageSqliteLab>
{
    private static readonly TimeSpan Outage = TimeSpan.FromSeconds(30);

    private const string AfterService = """
        apiVersion: v1
        kind: Service
        metadata:
          name: webpod-after
        spec:
          selector:
            app: webpod
          ports:
          - protocol: TCP
            port: 80
            targetPort: 80
        """;

    [Fact]
    public async Task A_locked_store_costs_no_request_and_a_change_made_after_it_is_applied()
    {
        var state = lab.State;
        var client = state.Pod("default", "curl-pod") ?? throw new InvalidOperationException("no curl-pod");
        var web = await ClusterIpAsync(state, "webpod");
        await using var probe = new StoreOutageProbe(client.Netns, new IPEndPoint(web, 80));
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Empty(probe.Failures); // the probe works before the outage

        var unreachableSeen = new HashSet<string>(StringComparer.Ordinal);
        var lockedAt = probe.Elapsed;
        var held = Stopwatch.StartNew();
        await using (var locker = new SqliteConnection($"Data Source={state.StorePath}"))
        {
            await locker.OpenAsync();
            await ExecAsync(locker, "BEGIN EXCLUSIVE");
            while (held.Elapsed < Outage)
            {
                foreach (var n in state.Nodes)
                {
                    var status = await StatusAsync(state, n.Name);
                    if (!status.StoreReachable)
                    {
                        Assert.False(status.Healthy);
                        Assert.NotNull(status.StoreUnreachableSince);
                        unreachableSeen.Add(n.Name);
                    }
                }

                await Task.Delay(1000);
            }

            await ExecAsync(locker, "ROLLBACK");
        }

        var releasedAt = probe.Elapsed;
        Assert.Equal(state.Nodes.Select(n => n.Name).Order(StringComparer.Ordinal), unreachableSeen.Order(StringComparer.Ordinal));

        // Right after the lock: a new Service, which every node must apply (the pod's node balances it).
        await Lab.ApplyAsync(state, AfterService, TextWriter.Null);
        var after = await ClusterIpAsync(state, "webpod-after");
        var applied = Stopwatch.StartNew();
        using var ns = Loom.Linux.NetNs.Open(client.Netns);
        while (true)
        {
            try
            {
                await Migration.ProbeRequests.HttpGetAsync(() => Loom.Linux.NetNs.Run(ns, Migration.ProbeRequests.Tcp), new IPEndPoint(after, 80), TimeSpan.FromSeconds(1), CancellationToken.None);
                break;
            }
            catch (Migration.ProbeException e)
            {
                Assert.True(applied.Elapsed < TimeSpan.FromSeconds(20), $"webpod-after ({after}) not answering 20 s after the lock: {e.Message}");
                await Task.Delay(200);
            }
        }

        var appliedIn = applied.Elapsed;
        foreach (var n in state.Nodes)
        {
            var deadline = Stopwatch.StartNew();
            while (!(await StatusAsync(state, n.Name)).StoreReachable)
            {
                Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(20), $"{n.Name} still says the store is unreachable 20 s after the lock");
                await Task.Delay(500);
            }
        }

        await Task.Delay(TimeSpan.FromSeconds(2));
        await probe.StopAsync();
        output.WriteLine($"SQLite locked {(releasedAt - lockedAt).TotalSeconds:0.0} s: probe {probe.Requests} requests, {probe.Failures.Count} failed; "
                         + $"unreachable seen on {string.Join(",", unreachableSeen)}; webpod-after answered {appliedIn.TotalSeconds:0.0} s after the lock");
        Assert.True(probe.Failures.Count == 0, string.Join("\n", probe.Failures.Take(20).Select(f => $"{f.At.TotalSeconds:0.0} s: {f.Failure}")));
        Assert.True(probe.Requests > 300, $"only {probe.Requests} requests");
    }

    private static async Task<IPAddress> ClusterIpAsync(LabState state, string name)
    {
        var store = await Lab.OpenStoreAsync(state);
        await using (store)
        {
            var svc = (await store.ListAsync(Kinds.Service)).Items.Select(v => v.Value).FirstOrDefault(s => s.Namespace == "default" && s.Name == name);
            return svc?.ClusterIp ?? throw new InvalidOperationException($"Service default/{name} is not in the store");
        }
    }

    private static async Task<AgentStatus> StatusAsync(LabState state, string node) =>
        (await AgentClient.SendAsync(Lab.AgentSocket(state, node), new AgentRequest { Op = "status" }, TimeSpan.FromSeconds(5))).Status
        ?? throw new InvalidOperationException($"no status from {node}");

    private static async Task ExecAsync(SqliteConnection c, string sql)
    {
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        await cmd.ExecuteNonQueryAsync();
    }
}
