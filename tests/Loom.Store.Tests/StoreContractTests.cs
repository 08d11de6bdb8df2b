using Loom.Core.Model;
using Loom.Core.Store;

namespace Loom.Store.Tests;

/// <summary>The behaviour every <see cref="IStore"/> must have; each implementation runs it through a subclass.</summary>
public abstract class StoreContractTests : IAsyncLifetime
{
    protected static readonly TimeSpan EventTimeout = TimeSpan.FromSeconds(10);

    private IStore? _a;
    private IStore? _b;

    /// <summary>First instance.</summary>
    protected IStore A => _a ?? throw new InvalidOperationException("not initialized");

    /// <summary>A second, independent instance on the same state (same file / same etcd).</summary>
    protected IStore B => _b ?? throw new InvalidOperationException("not initialized");

    /// <summary>Shortest lease the implementation honours (etcd's minimum is about 2 s).</summary>
    protected virtual TimeSpan ShortLease => TimeSpan.FromMilliseconds(300);

    public async Task InitializeAsync()
    {
        _a = await OpenAsync();
        _b = await OpenAsync();
    }

    public async Task DisposeAsync()
    {
        if (_b is not null)
        {
            await _b.DisposeAsync();
        }

        if (_a is not null)
        {
            await _a.DisposeAsync();
        }

        await CleanupAsync();
    }

    protected abstract Task<IStore> OpenAsync();

    protected virtual Task CleanupAsync() => Task.CompletedTask;

    [Fact]
    public async Task Put_get_list_delete()
    {
        Assert.Null(await A.GetAsync("node", "n1"));
        var p1 = await A.PutAsync("node", "n1", """{"v":1}""");
        var p2 = await A.PutAsync("node", "n2", """{"v":2}""");
        await A.PutAsync("service", "default/web", "{}");
        Assert.True(p1.Succeeded && p2.Succeeded);

        var got = await A.GetAsync("node", "n1");
        Assert.NotNull(got);
        Assert.Equal("""{"v":1}""", got.Value);
        Assert.Equal(p1.Revision, got.ModRevision);
        Assert.Equal(p1.Revision, got.CreateRevision);

        var list = await A.ListAsync("node");
        Assert.Equal(["n1", "n2"], list.Items.Select(i => i.Key));
        Assert.True(list.Revision >= p2.Revision);

        Assert.True(await A.DeleteAsync("node", "n1"));
        Assert.False(await A.DeleteAsync("node", "n1"));
        Assert.Null(await A.GetAsync("node", "n1"));
        Assert.Equal(["n2"], (await A.ListAsync("node")).Items.Select(i => i.Key));
    }

    [Fact]
    public async Task Revisions_increase_with_every_write()
    {
        var start = await A.GetRevisionAsync();
        var r1 = (await A.PutAsync("node", "n1", "1")).Revision;
        var r2 = (await A.PutAsync("node", "n1", "2")).Revision;
        var r3 = (await B.PutAsync("node", "n2", "3")).Revision;
        Assert.True(start < r1 && r1 < r2 && r2 < r3);
        Assert.True(await A.DeleteAsync("node", "n2"));
        Assert.True(await A.GetRevisionAsync() > r3);

        var item = await A.GetAsync("node", "n1");
        Assert.Equal(r1, item!.CreateRevision);
        Assert.Equal(r2, item.ModRevision);
    }

    [Fact]
    public async Task Compare_and_swap_detects_conflicts()
    {
        var created = await A.PutAsync("node", "n1", "a", expectedRevision: 0);
        Assert.True(created.Succeeded);

        var again = await A.PutAsync("node", "n1", "b", expectedRevision: 0);
        Assert.False(again.Succeeded);
        Assert.Equal(created.Revision, again.Revision);

        var updated = await B.PutAsync("node", "n1", "c", expectedRevision: created.Revision);
        Assert.True(updated.Succeeded);

        var stale = await A.PutAsync("node", "n1", "d", expectedRevision: created.Revision);
        Assert.False(stale.Succeeded);
        Assert.Equal(updated.Revision, stale.Revision);
        Assert.Equal("c", (await A.GetAsync("node", "n1"))!.Value);

        Assert.False(await A.DeleteAsync("node", "n1", expectedRevision: created.Revision));
        Assert.True(await A.DeleteAsync("node", "n1", expectedRevision: updated.Revision));
        Assert.False((await A.PutAsync("node", "gone", "x", expectedRevision: 5)).Succeeded);
    }

    [Fact]
    public async Task Watch_from_a_revision_sees_exactly_the_later_events_in_order()
    {
        var start = await A.GetRevisionAsync();
        var expected = new List<StoreEvent>();
        foreach (var (op, key) in new[] { ("put", "a"), ("put", "b"), ("put", "a"), ("del", "b"), ("put", "c") })
        {
            if (op == "put")
            {
                var r = await A.PutAsync("node", key, $"v-{key}-{expected.Count}");
                expected.Add(new StoreEvent(StoreEventType.Put, "node", key, $"v-{key}-{expected.Count}", r.Revision));
            }
            else
            {
                Assert.True(await A.DeleteAsync("node", key));
                expected.Add(new StoreEvent(StoreEventType.Delete, "node", key, null, await A.GetRevisionAsync()));
            }
        }

        var all = await TakeAsync(A.WatchAsync("node", start), expected.Count);
        Assert.Equal(expected, all);

        // From the second event's revision: strictly after it.
        var tail = await TakeAsync(B.WatchAsync("node", expected[1].Revision), 3);
        Assert.Equal(expected.Skip(2), tail);

        // From revision 0: everything, so the last five are ours.
        var fromZero = await TakeUntilAsync(A.WatchAsync(null, 0), e => e.Revision == expected[^1].Revision);
        Assert.Equal(expected, fromZero.Where(e => e.Kind == "node").TakeLast(expected.Count));
        Assert.Equal(fromZero.OrderBy(e => e.Revision), fromZero);
    }

    [Fact]
    public async Task Watch_filters_by_kind_and_follows_live_writes_from_another_instance()
    {
        var start = await A.GetRevisionAsync();
        using var cts = new CancellationTokenSource(EventTimeout);
        var seen = new List<StoreEvent>();
        var watching = Task.Run(async () =>
        {
            await foreach (var e in A.WatchAsync("endpoint", start, cts.Token))
            {
                seen.Add(e);
                if (seen.Count == 2)
                {
                    break;
                }
            }
        });

        await Task.Delay(200);
        await B.PutAsync("service", "default/web", "{}");
        var p = await B.PutAsync("endpoint", "default/pod-1", "ep1");
        await B.PutAsync("node", "n1", "{}");
        Assert.True(await B.DeleteAsync("endpoint", "default/pod-1"));
        await watching.WaitAsync(EventTimeout);

        Assert.Equal(2, seen.Count);
        Assert.Equal(new StoreEvent(StoreEventType.Put, "endpoint", "default/pod-1", "ep1", p.Revision), seen[0]);
        Assert.Equal(StoreEventType.Delete, seen[1].Type);
        Assert.Equal("default/pod-1", seen[1].Key);
        Assert.True(seen[1].Revision > p.Revision);
    }

    [Fact]
    public async Task Lease_expiry_deletes_the_key_and_emits_a_delete()
    {
        var lease = await A.GrantLeaseAsync(ShortLease);
        var put = await A.PutAsync("node", "mortal", "{}", lease: lease);
        await A.PutAsync("node", "immortal", "{}");
        Assert.Equal(lease, (await A.GetAsync("node", "mortal"))!.Lease);

        var events = await TakeUntilAsync(B.WatchAsync("node", put.Revision), e => e.Key == "mortal", ShortLease + EventTimeout);
        var delete = events.Single(e => e.Key == "mortal");
        Assert.Equal(StoreEventType.Delete, delete.Type);
        Assert.True(delete.Revision > put.Revision);
        Assert.Null(await A.GetAsync("node", "mortal"));
        Assert.NotNull(await A.GetAsync("node", "immortal"));
        Assert.False(await A.KeepAliveAsync(lease));
    }

    [Fact]
    public async Task Keep_alive_and_revoke()
    {
        var lease = await A.GrantLeaseAsync(TimeSpan.FromSeconds(30));
        await A.PutAsync("node", "n1", "{}", lease: lease);
        Assert.True(await B.KeepAliveAsync(lease));
        await B.RevokeLeaseAsync(lease);
        Assert.Null(await A.GetAsync("node", "n1"));
        Assert.False(await A.KeepAliveAsync(lease));
        await Assert.ThrowsAnyAsync<Exception>(() => A.PutAsync("node", "n2", "{}", lease: lease));
    }

    [Fact]
    public async Task Concurrent_compare_and_swap_from_two_instances_loses_no_update()
    {
        await A.PutAsync("counter", "c", "0");
        const int PerInstance = 25;
        var conflicts = 0;

        async Task Increment(IStore store)
        {
            for (var done = 0; done < PerInstance;)
            {
                var item = (await store.GetAsync("counter", "c"))!;
                var next = (int.Parse(item.Value, System.Globalization.CultureInfo.InvariantCulture) + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
                if ((await store.PutAsync("counter", "c", next, expectedRevision: item.ModRevision)).Succeeded)
                {
                    done++;
                }
                else
                {
                    Interlocked.Increment(ref conflicts);
                }
            }
        }

        await Task.WhenAll(Task.Run(() => Increment(A)), Task.Run(() => Increment(B)));
        Assert.Equal((2 * PerInstance).ToString(System.Globalization.CultureInfo.InvariantCulture), (await A.GetAsync("counter", "c"))!.Value);
    }

    [Fact]
    public async Task Exactly_one_of_two_racing_creates_wins()
    {
        for (var i = 0; i < 10; i++)
        {
            var key = $"k{i}";
            var results = await Task.WhenAll(
                Task.Run(() => A.PutAsync("podcidr", key, "a", expectedRevision: 0)),
                Task.Run(() => B.PutAsync("podcidr", key, "b", expectedRevision: 0)));
            Assert.Single(results, r => r.Succeeded);
        }
    }

    [Fact]
    public async Task Watch_from_a_compacted_revision_fails()
    {
        var first = await A.PutAsync("node", "n1", "1");
        await A.PutAsync("node", "n1", "2");
        var third = await A.PutAsync("node", "n1", "3");
        await A.CompactAsync(third.Revision - 1);

        await Assert.ThrowsAsync<StoreCompactedException>(() => TakeAsync(A.WatchAsync("node", first.Revision - 1), 1));
        var after = await TakeAsync(A.WatchAsync("node", third.Revision - 1), 1);
        Assert.Equal("3", after[0].Value);
    }

    [Fact]
    public async Task Typed_objects_round_trip()
    {
        var node = new Node
        {
            Name = "n1",
            UnderlayInterface = "eth1",
            UnderlayIp = System.Net.IPAddress.Parse("192.168.56.11"),
            PodCidrs = [System.Net.IPNetwork.Parse("10.244.1.0/24")],
            Labels = new Dictionary<string, string> { ["zone"] = "a" },
            Ready = true,
        };
        var put = await A.PutAsync(Kinds.Node, node, expectedRevision: 0);
        Assert.True(put.Succeeded);

        var got = await B.GetAsync(Kinds.Node, "n1");
        Assert.NotNull(got);
        Assert.Equal(put.Revision, got.Revision);
        Assert.Equal(node.UnderlayIp, got.Value.UnderlayIp);
        Assert.Equal(node.PodCidrs, got.Value.PodCidrs);
        Assert.Equal("a", got.Value.Labels["zone"]);

        var (items, revision) = await B.ListAsync(Kinds.Node);
        Assert.Single(items);
        var events = await TakeAsync(A.WatchAsync(Kinds.Node, revision - 1), 1);
        Assert.Equal("eth1", events[0].Value!.UnderlayInterface);
    }

    protected static Task<List<StoreEvent>> TakeAsync(IAsyncEnumerable<StoreEvent> watch, int count)
    {
        var n = 0;
        return TakeUntilAsync(watch, _ => ++n == count);
    }

    protected static Task<List<ObjectEvent<T>>> TakeAsync<T>(IAsyncEnumerable<ObjectEvent<T>> watch, int count)
        where T : class
        => Collect(watch, count);

    protected static async Task<List<StoreEvent>> TakeUntilAsync(IAsyncEnumerable<StoreEvent> watch, Func<StoreEvent, bool> last,
        TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? EventTimeout);
        var seen = new List<StoreEvent>();
        await foreach (var e in watch.WithCancellation(cts.Token))
        {
            seen.Add(e);
            if (last(e))
            {
                break;
            }
        }

        return seen;
    }

    private static async Task<List<ObjectEvent<T>>> Collect<T>(IAsyncEnumerable<ObjectEvent<T>> watch, int count)
        where T : class
    {
        using var cts = new CancellationTokenSource(EventTimeout);
        var seen = new List<ObjectEvent<T>>();
        await foreach (var e in watch.WithCancellation(cts.Token))
        {
            seen.Add(e);
            if (seen.Count == count)
            {
                break;
            }
        }

        return seen;
    }
}
