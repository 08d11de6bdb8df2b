using System.Diagnostics;
using System.Net;
using Loom.Agent.Registration;
using Loom.Core.Model;
using Loom.Core.Pool;
using Loom.Core.Store;
using Loom.Store.Sqlite;

namespace Loom.Agent.Tests.Registration;

/// <summary>
/// The node controller's leases with short values (node lease 2 s, the least it takes; grace 2 s; heartbeat 1 s): the
/// node object goes first, its block one grace later; an agent back sooner keeps its block. On both local stores.
/// </summary>
public sealed class NodeLeaseTests : IDisposable
{
    private static readonly IPNetwork[] Pool = [IPNetwork.Parse("10.244.0.0/16")];
    private static readonly ClusterConfig Cluster = new() { PodCidrPools = Pool, PodCidrGraceSeconds = 2 };

    private readonly string _dir = Directory.CreateTempSubdirectory("loom-nodelease-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private async Task<IStore> OpenAsync(string store) => store == "sqlite"
        ? await SqliteStore.OpenAsync(Path.Combine(_dir, "state.db"))
        : MemoryStore.Create();

    [Theory]
    [InlineData("memory")]
    [InlineData("sqlite")]
    public async Task A_node_gone_longer_than_the_grace_loses_its_block_and_one_back_sooner_keeps_it(string kind)
    {
        await using var store = await OpenAsync(kind);

        // First life: the block is claimed, then held under the blocks' lease from the controller's start.
        var block = await PodCidrAllocator.Create(store, Cluster).AllocateAsync("n1");
        var log = new StringWriter();
        var life = await Agent.StartAsync(store, block, log);
        Assert.NotEqual(0, (await store.GetAsync(Kinds.PodCidr.Name, block.ToString()))!.Lease);
        Assert.Contains($"pod CIDR claims {block} held under lease", log.ToString(), StringComparison.Ordinal);
        await Task.Delay(TimeSpan.FromSeconds(3)); // past both TTLs' first span: the heartbeat renews both
        Assert.NotNull(await store.GetAsync(Kinds.Node, "n1"));
        Assert.NotNull(await store.GetAsync(Kinds.PodCidr, block.ToString()));

        // Gone, and back within the grace: the same block, now under the second life's lease.
        await life.StopAsync();
        await WaitUntilAsync(async () => await store.GetAsync(Kinds.Node, "n1") is null, TimeSpan.FromSeconds(5));
        Assert.Equal(block, await PodCidrAllocator.Create(store, Cluster).AllocateAsync("n1"));
        life = await Agent.StartAsync(store, block, log);
        await Task.Delay(TimeSpan.FromSeconds(5)); // past the first life's blocks' lease (2 s + 2 s)
        Assert.Equal("n1", (await store.GetAsync(Kinds.PodCidr, block.ToString()))?.Value.Node);

        // Gone for good: the node object goes after its lease, the block one grace later, and returns to the pool.
        await life.StopAsync();
        var stopped = Stopwatch.StartNew();
        await WaitUntilAsync(async () => await store.GetAsync(Kinds.Node, "n1") is null, TimeSpan.FromSeconds(5));
        Assert.NotNull(await store.GetAsync(Kinds.PodCidr, block.ToString()));
        await WaitUntilAsync(async () => await store.GetAsync(Kinds.PodCidr, block.ToString()) is null, TimeSpan.FromSeconds(8));

        // Renewed last at most one heartbeat (1 s) before the stop: freed no sooner than 2 s + 2 s after that.
        Assert.True(stopped.Elapsed >= TimeSpan.FromSeconds(2.7), $"block freed {stopped.Elapsed} after the agent stopped (node lease 2 s + grace 2 s)");
        Assert.Equal(block, await PodCidrAllocator.Create(store, Cluster).AllocateAsync("n2"));
    }

    [Fact]
    public async Task An_idle_heartbeat_renews_the_leases_only_once_a_third_of_the_node_lease_passed()
    {
        // Every store write wakes every agent's watches: a heartbeat renewing a 600 s lease every second was most of
        // an idle cluster's work. Renewals at TTL/3 (200 s), as etcd's clients do; a 3 s TTL renews every heartbeat.
        await using var inner = MemoryStore.Create();
        var store = new CountingStore(inner);
        var block = await PodCidrAllocator.Create(store, Cluster).AllocateAsync("n1");
        var life = await Agent.StartAsync(store, block, new StringWriter(), leaseSeconds: 600);
        await life.Controller.MarkReadyAsync(CancellationToken.None);
        var atStart = (store.KeepAlives, store.Puts);
        await Task.Delay(TimeSpan.FromSeconds(3.5)); // three heartbeats
        Assert.Equal(atStart, (store.KeepAlives, store.Puts));
        Assert.True(life.Controller.Describe().Passes >= 3, life.Controller.Describe().Summary);
        await life.StopAsync();

        life = await Agent.StartAsync(store, block, new StringWriter(), leaseSeconds: 3);
        atStart = (store.KeepAlives, store.Puts);
        await Task.Delay(TimeSpan.FromSeconds(3.5));
        Assert.True(store.KeepAlives - atStart.KeepAlives >= 4, $"{store.KeepAlives - atStart.KeepAlives} keep-alives in 3 heartbeats (node and blocks each)");
        await life.StopAsync();
    }

    [Fact]
    public void A_negative_grace_stops_the_agent_with_the_field_named()
    {
        var e = Assert.Throws<AgentStartException>(() => ClusterCheck.Validate(new ClusterConfig { PodCidrGraceSeconds = -1 }, new AgentConfig { Node = "n1" }));
        Assert.Contains("podCidrGraceSeconds: -1 is negative", e.Message, StringComparison.Ordinal);
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(deadline.Elapsed < timeout, $"not within {timeout}");
            await Task.Delay(100);
        }
    }

    /// <summary>One agent life of node n1: its node controller started and heartbeating until stopped.</summary>
    private sealed class Agent(NodeController controller, CancellationTokenSource stop, Task run)
    {
        public NodeController Controller => controller;

        public static async Task<Agent> StartAsync(IStore store, IPNetwork block, TextWriter log, int leaseSeconds = 2)
        {
            var context = new NodeContext("n1", new AgentConfig { Node = "n1", HeartbeatSeconds = 1, NodeLeaseSeconds = leaseSeconds }, Cluster,
                IPAddress.Parse("192.168.50.11"), 1500, block);
            var controller = new NodeController(context, store, new AgentLoops(store, log), () => null, () => new Dictionary<string, NodeNetwork>());
            await controller.StartAsync(CancellationToken.None);
            var stop = new CancellationTokenSource();
            return new Agent(controller, stop, controller.RunAsync(stop.Token));
        }

        public async Task StopAsync()
        {
            await stop.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
            stop.Dispose();
            controller.Dispose();
        }
    }

    private sealed class CountingStore(IStore inner) : Loom.Testing.DelegatingStore(inner)
    {
        private int _keepAlives;
        private int _puts;

        public int KeepAlives => Volatile.Read(ref _keepAlives);

        public int Puts => Volatile.Read(ref _puts);

        public override Task<bool> KeepAliveAsync(long lease, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _keepAlives);
            return base.KeepAliveAsync(lease, cancellationToken);
        }

        public override Task<PutResult> PutAsync(string kind, string key, string value, long? expectedRevision = null, long lease = 0,
            CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _puts);
            return base.PutAsync(kind, key, value, expectedRevision, lease, cancellationToken);
        }
    }
}
