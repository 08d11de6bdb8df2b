using System.Diagnostics;
using System.Net;
using Loom.Core.Model;
using Loom.Core.Pool;
using Loom.Core.Store;
using Loom.Store.Sqlite;

namespace Loom.Store.Tests;

/// <summary>
/// Pod CIDR blocks under <see cref="BlockLease"/> with short values (node lease 1 s, grace 2 s), on each store: a node
/// gone longer than the grace loses its block to the pool, one back sooner keeps it, a grace of 0 keeps blocks forever.
/// </summary>
public abstract class BlockLeaseTests : IAsyncLifetime
{
    private static readonly IPNetwork[] Pool = [IPNetwork.Parse("10.244.0.0/16")];
    private static readonly TimeSpan NodeLease = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(2);

    private IStore? _store;

    protected IStore Store => _store ?? throw new InvalidOperationException("not initialized");

    public async Task InitializeAsync() => _store = await OpenAsync();

    public async Task DisposeAsync()
    {
        if (_store is not null)
        {
            await _store.DisposeAsync();
        }

        await CleanupAsync();
    }

    protected abstract Task<IStore> OpenAsync();

    protected virtual Task CleanupAsync() => Task.CompletedTask;

    [Fact]
    public async Task A_node_gone_longer_than_the_grace_loses_its_block_to_the_pool()
    {
        await using var n1 = await Agent.StartAsync(Store, "n1", Grace);
        await using var n2 = await Agent.StartAsync(Store, "n2", Grace);
        Assert.NotEqual(n1.Block, n2.Block);

        await n1.StopAsync();
        var stopped = Stopwatch.StartNew();
        await WaitUntilAsync(async () => await Store.GetAsync(Kinds.Node, "n1") is null, TimeSpan.FromSeconds(5));
        Assert.Equal("n1", (await ClaimAsync(n1.Block))?.Node); // within the grace: still n1's

        // Renewed last at most one beat (250 ms) before the stop: freed no sooner than the node lease + grace after it.
        await WaitUntilAsync(async () => await ClaimAsync(n1.Block) is null, TimeSpan.FromSeconds(8));
        Assert.True(stopped.Elapsed >= NodeLease + Grace - TimeSpan.FromMilliseconds(300), $"block freed {stopped.Elapsed} after the agent stopped, node lease {NodeLease} + grace {Grace}");

        // The live node keeps its block; the freed one is the first free again.
        Assert.Equal("n2", (await ClaimAsync(n2.Block))?.Node);
        Assert.Equal(n1.Block, await PodCidrAllocator.Create(Store, Pool, 24).AllocateAsync("n3"));
    }

    [Fact]
    public async Task A_node_back_within_the_grace_gets_the_same_block_and_keeps_it()
    {
        IPNetwork block;
        await using (var first = await Agent.StartAsync(Store, "n1", Grace))
        {
            block = first.Block;
            await first.StopAsync();
        }

        await WaitUntilAsync(async () => await Store.GetAsync(Kinds.Node, "n1") is null, TimeSpan.FromSeconds(5));
        await Task.Delay(TimeSpan.FromMilliseconds(500));
        await using var again = await Agent.StartAsync(Store, "n1", Grace);
        Assert.Equal(block, again.Block);

        // Past the first life's lease: the claim moved to the new one, so it stayed.
        await Task.Delay(NodeLease + Grace + TimeSpan.FromSeconds(1));
        var claim = await Store.GetAsync(Kinds.PodCidr.Name, block.ToString());
        Assert.NotNull(claim);
        Assert.Equal(again.Lease.Id, claim.Lease);
        Assert.NotNull(await Store.GetAsync(Kinds.Node, "n1"));
    }

    [Fact]
    public async Task A_grace_of_zero_keeps_blocks_forever_even_those_held_under_a_lease()
    {
        IPNetwork block;
        await using (var leased = await Agent.StartAsync(Store, "n1", Grace))
        {
            block = leased.Block;
            await leased.StopAsync();
        }

        await using (var forever = await Agent.StartAsync(Store, "n1", TimeSpan.Zero))
        {
            Assert.Equal(block, forever.Block);
            Assert.Equal(0, forever.Lease.Id);
            await forever.StopAsync();
        }

        await Task.Delay(NodeLease + Grace + TimeSpan.FromSeconds(1));
        Assert.Null(await Store.GetAsync(Kinds.Node, "n1"));
        var claim = await Store.GetAsync(Kinds.PodCidr.Name, block.ToString());
        Assert.NotNull(claim);
        Assert.Equal(0, claim.Lease);
    }

    [Fact]
    public async Task Renewal_takes_on_only_this_nodes_claims_and_after_a_lapse_claims_its_blocks_again()
    {
        var allocator = PodCidrAllocator.Create(Store, Pool, 24);
        var mine = await allocator.AllocateAsync("n1");
        var theirs = await allocator.AllocateAsync("n2");
        var second = await PodCidrAllocator.Create(Store, [IPNetwork.Parse("10.245.0.0/16")], 24).AllocateAsync("n1"); // a second network's
        var lease = new BlockLease(Store, "n1", TimeSpan.FromMilliseconds(1500));

        var first = await lease.RenewAsync([mine, second]);
        Assert.Equal([mine.ToString(), second.ToString()], first.Moved.Order(StringComparer.Ordinal));
        Assert.False(first.Lapsed);
        Assert.Equal(0, (await Store.GetAsync(Kinds.PodCidr.Name, theirs.ToString()))!.Lease);
        Assert.Empty((await lease.RenewAsync([mine, second])).Moved);

        // Not renewed for longer than its TTL (the store out of reach): the claims went with the lease, and n3 took the first free block.
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Null(await allocator.GetAsync("n1"));
        Assert.Equal(mine, await allocator.AllocateAsync("n3"));

        var late = await lease.RenewAsync([mine, second]);
        Assert.True(late.Lapsed);
        Assert.NotEqual(first.Lease, late.Lease);
        Assert.Equal([second.ToString()], late.Moved);
        Assert.Equal([mine.ToString()], late.Lost);
        Assert.Equal(1, late.Held);
        Assert.Equal(late.Lease, (await Store.GetAsync(Kinds.PodCidr.Name, second.ToString()))!.Lease);
        Assert.Equal("n3", (await Store.GetAsync(Kinds.PodCidr, mine.ToString()))!.Value.Node);
        Assert.Equal(theirs, await allocator.GetAsync("n2"));
    }

    [Fact]
    public void A_negative_grace_is_refused()
        => Assert.Throws<ArgumentOutOfRangeException>(() => BlockLease.Ttl(NodeLease, TimeSpan.FromSeconds(-1)));

    private async Task<PodCidrClaim?> ClaimAsync(IPNetwork block) => (await Store.GetAsync(Kinds.PodCidr, block.ToString()))?.Value;

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(deadline.Elapsed < timeout, $"not within {timeout}");
            await Task.Delay(100);
        }
    }

    /// <summary>What a node agent does with the store: claims a block, writes its node object under the node lease, renews both.</summary>
    private sealed class Agent : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private Task _beats = Task.CompletedTask;

        private Agent(IPNetwork block, BlockLease lease)
        {
            Block = block;
            Lease = lease;
        }

        public IPNetwork Block { get; }

        public BlockLease Lease { get; }

        public static async Task<Agent> StartAsync(IStore store, string name, TimeSpan grace)
        {
            var block = await PodCidrAllocator.Create(store, Pool, 24).AllocateAsync(name);
            var lease = new BlockLease(store, name, BlockLease.Ttl(NodeLease, grace));
            var node = new Node { Name = name, UnderlayInterface = "eth1", UnderlayIp = IPAddress.Parse("192.168.56.11"), PodCidrs = [block] };
            var nodeLease = await RegisterAsync(store, node, CancellationToken.None);
            await lease.RenewAsync();
            var agent = new Agent(block, lease);
            agent._beats = agent.BeatAsync(store, node, nodeLease);
            return agent;
        }

        private static async Task<long> RegisterAsync(IStore store, Node node, CancellationToken ct)
        {
            var nodeLease = await store.GrantLeaseAsync(NodeLease, ct);
            Assert.True((await store.PutAsync(Kinds.Node, node, lease: nodeLease, cancellationToken: ct)).Succeeded);
            return nodeLease;
        }

        public async Task StopAsync()
        {
            await _stop.CancelAsync();
            await _beats;
        }

        public async ValueTask DisposeAsync()
        {
            await StopAsync();
            _stop.Dispose();
        }

        private async Task BeatAsync(IStore store, Node node, long nodeLease)
        {
            try
            {
                while (true)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(250), _stop.Token);
                    // A beat late by more than the node lease (a loaded machine) re-registers, as the agent does.
                    if (!await store.KeepAliveAsync(nodeLease, _stop.Token))
                    {
                        nodeLease = await RegisterAsync(store, node, _stop.Token);
                    }

                    await Lease.RenewAsync(cancellationToken: _stop.Token);
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                // stopped: the agent is gone, its leases run out
            }
        }
    }
}

public sealed class BlockLeaseOnMemoryStoreTests : BlockLeaseTests
{
    protected override Task<IStore> OpenAsync() => Task.FromResult(MemoryStore.Create());
}

public sealed class BlockLeaseOnSqliteTests : BlockLeaseTests
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-blocklease-").FullName;

    protected override Task<IStore> OpenAsync() => SqliteStore.OpenAsync(Path.Combine(_dir, "state.db"));

    protected override Task CleanupAsync()
    {
        Directory.Delete(_dir, recursive: true);
        return Task.CompletedTask;
    }
}
