using System.Collections.Concurrent;
using System.Text.Json;
using Loom.Core.Model;
using Loom.Core.Reconcile;
using Loom.Core.Store;
using Loom.Core.Watch;
using Microsoft.Extensions.Time.Testing;

namespace Loom.Core.Tests.Watch;

/// <summary>An endpoint cache over a breakable in-memory store, its errors, a mirror subscriber and the run loop.</summary>
internal sealed class CacheHarness : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private Task _run = Task.CompletedTask;

    public CacheHarness(Backoff? backoff = null)
    {
        Store = new FlakyStore(MemoryStore.Create(Time));
        Cache = new ObjectCache<Endpoint>(Store, Kinds.Endpoint, Time, Errors.Enqueue, backoff ?? new Backoff(TimeSpan.Zero, TimeSpan.Zero));
        Cache.AddIndex("node", e => [e.Node]);
    }

    public FakeTimeProvider Time { get; } = new();

    public FlakyStore Store { get; }

    public ObjectCache<Endpoint> Cache { get; }

    public ConcurrentQueue<CacheError> Errors { get; } = new();

    public Mirror<Endpoint> Mirror { get; } = new();

    public static Endpoint Ep(string name, string node, string ip = "10.0.0.1") =>
        new() { Namespace = "default", Name = name, Node = node, ContainerId = "c-" + name, IPs = [System.Net.IPAddress.Parse(ip)] };

    public async Task StartAsync()
    {
        Cache.Subscribe(Mirror.Handle);
        _run = Cache.RunAsync(_stop.Token);
        await Cache.Synced.WaitAsync(TimeSpan.FromSeconds(10));
        if (Cache.Snapshot.Count > 0)
        {
            await Mirror.WaitForRevisionAsync(Cache.Revision);
        }
    }

    public async Task<long> PutAsync(Endpoint e) =>
        (await Store.PutAsync(Kinds.Endpoint.Name, e.Key, JsonSerializer.Serialize(e, Kinds.Endpoint.TypeInfo))).Revision;

    public async Task<long> PutRawAsync(string key, string json) => (await Store.PutAsync(Kinds.Endpoint.Name, key, json)).Revision;

    public async Task<long> DeleteAsync(string key)
    {
        await Store.DeleteAsync(Kinds.Endpoint.Name, key);
        return await Store.GetRevisionAsync();
    }

    /// <summary>Waits until both the cache and the mirror reflect <paramref name="revision"/>.</summary>
    public async Task SettleAsync(long revision)
    {
        await Cache.WaitForRevisionAsync(revision).WaitAsync(TimeSpan.FromSeconds(10));
        await Mirror.WaitForRevisionAsync(revision);
    }

    /// <summary>Waits until the store has served <paramref name="count"/> watch calls (the cache is watching).</summary>
    public async Task WatchingAsync(int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Store.Watches < count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"only {Store.Watches} watches started, expected {count}");
            await Task.Yield();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _run.WaitAsync(TimeSpan.FromSeconds(10));
        _stop.Dispose();
    }
}
