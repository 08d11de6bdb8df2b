using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Store;
using Loom.Store.Sqlite;

namespace Loom.Agent.Tests;

/// <summary>
/// The agent's loops against a store that fails (etcd's RpcException, SQLite's SqliteException) for a while: they back
/// off exponentially, say so, and recover; nothing here touches the kernel (the start is refused before it would).
/// </summary>
public sealed class AgentLoopTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    // An interface that does not exist: should a check ever let the start through, it stops at the underlay lookup.
    private static AgentHost Host(IStore store, LogCapture log) =>
        new(new AgentConfig { Node = "k8s-w1", Iface = "ltnone0" }, store, log)
        {
            RetryFirst = TimeSpan.FromMilliseconds(20),
            RetryCap = TimeSpan.FromMilliseconds(80),
        };

    [Fact]
    public async Task A_watch_on_a_failing_store_backs_off_then_delivers_events()
    {
        await using var inner = MemoryStore.Create();
        var store = new FlakyStore(inner, failures: 5);
        var log = new LogCapture();
        using var host = Host(store, log);
        using var signal = new SemaphoreSlim(0);
        using var cts = new CancellationTokenSource();
        var rpcBefore = AgentMetrics.LoopFailures.WithLabels("probe watch", "RpcException").Value;

        var watch = host.Loops.WatchAsync(null, 0, e => e.Key == "probe", signal, "probe", cts.Token);
        Assert.True(SpinWait.SpinUntil(() => store.Failed == 5, Patience), log.Text);
        await inner.PutAsync("service", "probe", "{}");

        // One signal per failure (a resync), one for the event the recovered watch delivers.
        Assert.True(SpinWait.SpinUntil(() => signal.CurrentCount == 6, Patience), $"signals {signal.CurrentCount}\n{log.Text}");
        Assert.False(watch.IsCompleted);
        Assert.Contains("probe watch failed, retrying in 0.02 s: RpcException: Status(StatusCode=\"Unavailable\"", log.Text, StringComparison.Ordinal);
        Assert.Contains("probe watch failed, retrying in 0.04 s: SqliteException", log.Text, StringComparison.Ordinal);
        Assert.Contains("retrying in 0.08 s", log.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("retrying in 0.16 s", log.Text, StringComparison.Ordinal); // capped
        Assert.Equal(3, AgentMetrics.LoopFailures.WithLabels("probe watch", "RpcException").Value - rpcBefore);

        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => watch);
    }

    [Fact]
    public async Task A_watch_from_a_compacted_revision_resyncs_from_the_current_one()
    {
        await using var store = MemoryStore.Create();
        var log = new LogCapture();
        using var host = Host(store, log);
        using var signal = new SemaphoreSlim(0);
        using var cts = new CancellationTokenSource();
        for (var i = 0; i < 3; i++)
        {
            await store.PutAsync("service", $"old-{i}", "{}");
        }

        await store.CompactAsync(await store.GetRevisionAsync());
        var watch = host.Loops.WatchAsync(null, 1, e => e.Key.StartsWith("new", StringComparison.Ordinal), signal, "probe", cts.Token);
        Assert.True(await signal.WaitAsync(Patience)); // the compaction: one full pass
        await store.PutAsync("service", "new", "{}");
        Assert.True(await signal.WaitAsync(Patience), log.Text);
        Assert.Equal(0, signal.CurrentCount); // the old events were not replayed
        Assert.DoesNotContain("failed", log.Text, StringComparison.Ordinal);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => watch);
    }

    [Fact]
    public async Task A_pass_that_fails_on_the_store_is_retried_until_it_succeeds()
    {
        await using var inner = MemoryStore.Create();
        var store = new FlakyStore(inner, failures: 3);
        var log = new LogCapture();
        using var host = Host(store, log);
        using var signal = new SemaphoreSlim(0);
        using var cts = new CancellationTokenSource();
        var passes = 0;

        var loop = host.Loops.RunOnSignalAsync(signal, async ct =>
        {
            await store.ListAsync("service", ct);
            Interlocked.Increment(ref passes);
        }, "probe sync", cts.Token);
        signal.Release();

        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref passes) == 1, Patience), log.Text);
        Assert.Equal(3, store.Failed);
        Assert.Equal(3, log.Text.Split('\n').Count(l => l.Contains("probe sync failed, retrying in", StringComparison.Ordinal)));
        Assert.False(loop.IsCompleted);
        // Reset after the pass returns, a moment after it counted itself.
        Assert.True(SpinWait.SpinUntil(() => AgentMetrics.LoopBackoff.WithLabels("probe sync").Value == 0, Patience));
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => loop);
    }

    [Fact]
    public async Task The_start_waits_for_the_store_then_refuses_a_tunnel_device_loom_does_not_own()
    {
        await using var inner = MemoryStore.Create();
        await inner.PutAsync(Kinds.ClusterConfig, new ClusterConfig { Tunnel = new TunnelConfig { Device = "eth1" } });
        var store = new FlakyStore(inner, failures: 4);
        var log = new LogCapture();
        using var host = Host(store, log);
        using var cts = new CancellationTokenSource(Patience);

        var e = await Assert.ThrowsAsync<AgentStartException>(() => host.RunAsync(cts.Token));
        Assert.Contains("tunnel.device: \"eth1\" is not a device Loom owns", e.Message, StringComparison.Ordinal);
        Assert.Equal(4, store.Failed);
        Assert.Contains("reading the cluster config failed, retrying in", log.Text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("cni0", "is not a device Loom owns")]
    [InlineData("eth1", "is not a device Loom owns")]
    [InlineData("loom/../x", "is not a Linux interface name")]
    public async Task An_agent_started_on_a_cluster_config_it_must_not_use_exits_with_the_reason(string device, string reason)
    {
        var dir = Directory.CreateTempSubdirectory("loom-agent-test-");
        try
        {
            var db = Path.Combine(dir.FullName, "state.db");
            await using (var seed = await SqliteStore.OpenAsync(db))
            {
                await seed.PutAsync(Kinds.ClusterConfig, new ClusterConfig { Tunnel = new TunnelConfig { Device = device } });
            }

            var log = new LogCapture();
            var config = new AgentConfig
            {
                Node = "k8s-w1", Iface = "ltnone0", Store = new StoreConfig { Path = db }, StateDir = Path.Combine(dir.FullName, "run"),
                CniConfDir = Path.Combine(dir.FullName, "net.d"), IpamDataDir = Path.Combine(dir.FullName, "ipam"),
            };
            using var cts = new CancellationTokenSource(Patience);
            Assert.Equal(1, await NodeAgent.RunAsync(config, log, cts.Token));
            var line = Assert.Single(log.Text.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith("loom agent: the cluster config in the store (config/cluster) is not usable: tunnel.device", line, StringComparison.Ordinal);
            Assert.Contains(reason, line, StringComparison.Ordinal);
            Assert.False(Directory.Exists(config.StateDir)); // nothing was set up
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
