using Loom.Core.Policy;
using Loom.Core.Store;
using Microsoft.Extensions.Time.Testing;

namespace Loom.Core.Tests.Policy;

public sealed class IdentityAllocatorTests
{
    private static readonly Dictionary<string, string> NoLabels = [];

    private static SecurityLabels Pod(string ns, params (string Key, string Value)[] labels) =>
        SecurityLabels.Of(ns, labels.ToDictionary(l => l.Key, l => l.Value), NoLabels);

    [Fact]
    public async Task Equal_sets_share_a_number_and_different_sets_get_different_ones_in_range()
    {
        await using var store = MemoryStore.Create();
        var a = new IdentityAllocator(store, "n1");
        var b = new IdentityAllocator(store, "n2");
        var web = await a.AcquireAsync(Pod("default", ("app", "web")));
        Assert.InRange(web.Id, ReservedIdentity.MinAllocated, ReservedIdentity.MaxAllocated);
        Assert.Equal(web.Id, (await b.AcquireAsync(Pod("default", ("app", "web"), ("pod-template-hash", "5d8f")))).Id);
        Assert.NotEqual(web.Id, (await a.AcquireAsync(Pod("other", ("app", "web")))).Id);
        Assert.Equal(web.Id, (await a.AcquireAsync(Pod("default", ("app", "web")))).Id);
        var (refs, _) = await store.ListAsync(Kinds.IdentityRef);
        Assert.Equal(new HashSet<string> { $"{web.Id}/n1", $"{web.Id}/n2" }, refs.Where(r => r.Value.Id == web.Id).Select(r => r.Key).ToHashSet());
        var record = (await store.GetAsync(Kinds.Identity, SecurityIdentity.KeyOf(web.Id)))!.Value;
        Assert.False(record.Pending);
        Assert.Equal(Pod("default", ("app", "web")), SecurityLabels.FromLabels(record.Labels));
    }

    [Fact]
    public async Task The_cluster_dns_pods_get_the_reserved_number_without_a_write()
    {
        await using var store = MemoryStore.Create();
        var before = await store.GetRevisionAsync();
        var dns = await new IdentityAllocator(store, "n1").AcquireAsync(Pod("kube-system", ("k8s-app", "kube-dns"), ("pod-template-hash", "x")));
        Assert.Equal(ReservedIdentity.KubeDns, dns.Id);
        Assert.Equal(before, await store.GetRevisionAsync());
        Assert.NotEqual(ReservedIdentity.KubeDns, (await new IdentityAllocator(store, "n1").AcquireAsync(Pod("default", ("k8s-app", "kube-dns")))).Id);
    }

    [Fact]
    public async Task Collection_deletes_only_unreferenced_identities_of_the_minimum_age()
    {
        await using var store = MemoryStore.Create();
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var a = new IdentityAllocator(store, "n1", time);
        var b = new IdentityAllocator(store, "n2", time);
        var web = await a.AcquireAsync(Pod("default", ("app", "web")));
        var db = await a.AcquireAsync(Pod("default", ("app", "db")));
        await b.AcquireAsync(Pod("default", ("app", "db")));
        await a.ReleaseAsync(web.Id);
        await a.ReleaseAsync(db.Id);
        Assert.Equal(0, await a.CollectGarbageAsync(TimeSpan.FromMinutes(5)));
        time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(1, await b.CollectGarbageAsync(TimeSpan.FromMinutes(5)));
        Assert.Null(await store.GetAsync(Kinds.Identity, SecurityIdentity.KeyOf(web.Id)));
        Assert.Null(await store.GetAsync(Kinds.IdentityKey, Pod("default", ("app", "web")).Hash()));
        Assert.NotNull(await store.GetAsync(Kinds.Identity, SecurityIdentity.KeyOf(db.Id)));
        Assert.False((await store.GetAsync(Kinds.IdentityKey, Pod("default", ("app", "db")).Hash()))!.Value.Dying);
        Assert.Equal(db.Id, (await a.AcquireAsync(Pod("default", ("app", "db")))).Id);
    }

    [Fact]
    public async Task Sync_drops_only_this_nodes_references_not_held()
    {
        await using var store = MemoryStore.Create();
        var a = new IdentityAllocator(store, "n1");
        var web = await a.AcquireAsync(Pod("default", ("app", "web")));
        var db = await a.AcquireAsync(Pod("default", ("app", "db")));
        await new IdentityAllocator(store, "n2").AcquireAsync(Pod("default", ("app", "db")));
        Assert.Equal(1, await a.SyncReferencesAsync(new HashSet<uint> { web.Id }));
        var (refs, _) = await store.ListAsync(Kinds.IdentityRef);
        Assert.Equal(new HashSet<string> { $"{db.Id}/n2", $"{web.Id}/n1" }, refs.Select(r => r.Key).ToHashSet());
    }

    [Fact]
    public async Task A_crashed_allocators_pending_claim_and_stale_binding_are_collected_and_the_set_numbered_again()
    {
        await using var store = MemoryStore.Create();
        var labels = Pod("default", ("app", "web"));
        await store.PutAsync(Kinds.Identity, new SecurityIdentity { Id = 300, Labels = labels.Labels, Pending = true }, expectedRevision: 0);
        await store.PutAsync(Kinds.IdentityKey, new IdentityKey { Hash = labels.Hash(), Id = 300, Labels = labels.Canonical }, expectedRevision: 0);
        var a = new IdentityAllocator(store, "n1");
        Assert.Equal(1, await a.CollectGarbageAsync(TimeSpan.Zero));
        Assert.Null(await store.GetAsync(Kinds.IdentityKey, labels.Hash()));
        var web = await a.AcquireAsync(labels);
        Assert.Equal(web.Id, (await store.GetAsync(Kinds.IdentityKey, labels.Hash()))!.Value.Id);
    }

    [Fact]
    public async Task An_acquire_clears_a_collectors_mark_so_the_identity_survives()
    {
        await using var store = MemoryStore.Create();
        var labels = Pod("default", ("app", "web"));
        var a = new IdentityAllocator(store, "n1");
        var web = await a.AcquireAsync(labels);
        await a.ReleaseAsync(web.Id);
        var key = (await store.GetAsync(Kinds.IdentityKey, labels.Hash()))!;
        await store.PutAsync(Kinds.IdentityKey, key.Value with { Dying = true }, expectedRevision: key.Revision); // a collector half way
        Assert.Equal(web.Id, (await a.AcquireAsync(labels)).Id);
        Assert.False((await store.GetAsync(Kinds.IdentityKey, labels.Hash()))!.Value.Dying);
        Assert.Equal(0, await a.CollectGarbageAsync(TimeSpan.Zero));
    }

    [Fact]
    public async Task Racing_allocators_never_give_a_set_two_numbers_or_a_number_two_sets() =>
        await IdentityRace.RunAsync([MemoryStore.Create()], nodes: 4, rounds: 40, collect: false);

    [Fact]
    public async Task Racing_allocators_releases_and_collectors_never_take_a_held_identity() =>
        await IdentityRace.RunAsync([MemoryStore.Create()], nodes: 4, rounds: 60, collect: true);
}
