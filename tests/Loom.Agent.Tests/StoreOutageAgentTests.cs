using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Loom.Agent.Cni;
using Loom.Core.AgentApi;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Linux;
using Loom.Store.Sqlite;
using Loom.Testing;
using Microsoft.Data.Sqlite;

namespace Loom.Agent.Tests;

/// <summary>
/// A real agent (out/bin/loom agent) whose SQLite store is locked by another process (BEGIN EXCLUSIVE, as a stuck
/// writer holds it): the Services stay programmed, status and metrics say the store is unreachable, a CNI ADD (loom-cni
/// run from the agent's conflist, as the runtime runs it) fails fast with code 11 and leaves nothing behind, and once the
/// lock is gone a change made then is applied and ADD works again.
/// </summary>
public sealed class StoreOutageAgentTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly AgentNode _node = new("outage");

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        _node.Dispose();
    }

    private string Socket => Path.Combine(_node.Dir.FullName, "run", "agent.sock");

    private string Nat() => Shell.InNetns(_node.Ns.Name, ["iptables-save", "-t", "nat"]).Stdout;

    private string Metrics() => Shell.InNetns(_node.Ns.Name, ["curl", "-sS", "--max-time", "5", $"http://{AgentNode.UnderlayIp}:9962/metrics"]).Stdout;

    private async Task<AgentStatus> StatusAsync() =>
        (await AgentClient.SendAsync(Socket, new AgentRequest { Op = "status" }, TimeSpan.FromSeconds(5))).Status ?? throw new InvalidOperationException("no status");

    private static Service Svc(string name, string ip) => new()
    {
        Namespace = "default", Name = name, ClusterIp = IPAddress.Parse(ip),
        Ports = [new ServicePort(null, Protocol.Tcp, 80, 8080)],
        Selector = new Dictionary<string, string> { ["app"] = "web" },
    };

    [Fact]
    public async Task A_locked_store_is_reported_ADD_fails_fast_with_code_11_and_a_change_after_the_lock_is_applied()
    {
        await using (var store = await SqliteStore.OpenAsync(_node.Db))
        {
            await store.PutAsync(Kinds.ClusterConfig, new ClusterConfig());
            await store.PutAsync(Kinds.Service, Svc("web", "10.96.0.10"));
            await store.PutAsync(Kinds.Endpoint, new Endpoint
            {
                Namespace = "default", Name = "web-1", Node = "k8s-w2", ContainerId = "c1", Interface = "eth0",
                IPs = [IPAddress.Parse("10.244.5.7")], Labels = new Dictionary<string, string> { ["app"] = "web" }, Ready = true,
            });
        }

        using var agent = _node.StartAgent();
        var conflist = Path.Combine(_node.CniConfDir, NodeCniConfig.ConflistName);
        Assert.True(Shell.WaitFor(() => File.Exists(conflist) || agent.HasExited, Patience), _node.LogText);
        Assert.True((await StatusAsync()).StoreReachable);
        Assert.True(Shell.WaitFor(() => Nat().Contains("\"default/web cluster IP\"", StringComparison.Ordinal), Patience), _node.LogText);
        Assert.Contains("loom_store_reachable 1\n", Metrics(), StringComparison.Ordinal);
        var runtime = new ConflistRunner(_node.Ns.Handle, await File.ReadAllTextAsync(conflist));
        using var pod = new TestNetns("pod");
        var podPath = Path.Combine(NetNs.RunDir, pod.Name);

        var locked = Stopwatch.StartNew();
        await using (var locker = new SqliteConnection($"Data Source={_node.Db}"))
        {
            await locker.OpenAsync();
            await ExecAsync(locker, "BEGIN EXCLUSIVE");

            // ADD before the agent has seen the lock (its write times out) and after (refused at once): both within 2 s.
            foreach (var id in new[] { "c-first", "c-second" })
            {
                var clock = Stopwatch.StartNew();
                var add = runtime.Add(id, podPath);
                clock.Stop();
                var failed = Assert.IsType<ChainStep>(add.Failed);
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"ADD {id} took {clock.Elapsed}: {add}");
                using var error = JsonDocument.Parse(failed.Run.Stdout);
                Assert.Equal(11, error.RootElement.GetProperty("code").GetInt32());
                Assert.Contains("the store is unreachable", error.RootElement.GetProperty("msg").GetString(), StringComparison.Ordinal);
                Assert.True(pod.Netlink.LinkByName("eth0") is null, $"eth0 left after {add}"); // rolled back
            }

            var ipam = Path.Combine(_node.Dir.FullName, "ipam");
            Assert.Empty(Directory.Exists(ipam) ? Directory.EnumerateFiles(ipam, "10.*", SearchOption.AllDirectories) : []);

            var status = await StatusAsync();
            Assert.False(status.StoreReachable);
            Assert.NotNull(status.StoreUnreachableSince);
            Assert.Contains("did not answer", status.StoreError, StringComparison.Ordinal);
            Assert.False(status.Healthy);
            var cli = Shell.Run(Path.Combine(CniRunner.BinDir, "loom"), ["status", "--socket", Socket]);
            Assert.Equal(1, cli.ExitCode);
            Assert.Matches(@"Store:\s+unreachable since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(\d+ s\): TimeoutException", cli.Stdout);
            Assert.Contains("loom_store_reachable 0\n", Metrics(), StringComparison.Ordinal);

            // Forwarding as last applied: the Service is still programmed, however long the lock lasts.
            while (locked.Elapsed < TimeSpan.FromSeconds(8))
            {
                Assert.Contains("\"default/web cluster IP\"", Nat(), StringComparison.Ordinal);
                await Task.Delay(500);
            }

            Assert.Matches(@"loom_store_unreachable_seconds [1-9]", Metrics());
            await ExecAsync(locker, "ROLLBACK");
        }

        // A change made right after the lock is applied, and the store is reachable again (the next write succeeds).
        await using (var store = await SqliteStore.OpenAsync(_node.Db))
        {
            await store.PutAsync(Kinds.Service, Svc("api", "10.96.0.20"));
        }

        Assert.True(Shell.WaitFor(() => Nat().Contains("\"default/api cluster IP\"", StringComparison.Ordinal), TimeSpan.FromSeconds(15)), _node.LogText);
        Assert.True(Shell.WaitFor(() => StatusAsync().GetAwaiter().GetResult().StoreReachable, TimeSpan.FromSeconds(15)), _node.LogText);
        Assert.Contains("loom_store_reachable 1\n", Metrics(), StringComparison.Ordinal);
        var again = runtime.Add("c-third", podPath);
        Assert.True(again.Ok, again.ToString());
        Assert.True(runtime.Del("c-third", podPath).Ok);
        Assert.False(agent.HasExited, _node.LogText);
    }

    private static async Task ExecAsync(SqliteConnection c, string sql)
    {
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        await cmd.ExecuteNonQueryAsync();
    }
}
