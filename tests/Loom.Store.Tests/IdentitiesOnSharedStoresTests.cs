using System.Collections.Concurrent;
using Loom.Core.Policy;
using Loom.Core.Store;
using Loom.Store.Sqlite;

namespace Loom.Store.Tests;

/// <summary>Identity allocation through one SQLite file opened by several agents at once, as nodes share the cluster store.</summary>
public sealed class IdentitiesOnSharedStoresTests
{
    private static readonly SecurityLabels[] Sets =
    [
        .. from ns in new[] { "a", "b" }
           from app in new[] { "web", "db", "cache", "api" }
           select SecurityLabels.Of(ns, new Dictionary<string, string> { ["app"] = app }, new Dictionary<string, string>()),
    ];

    [Fact]
    public async Task Racing_allocators_on_one_sqlite_file_never_give_a_set_two_numbers_or_a_number_two_sets()
    {
        var dir = Directory.CreateTempSubdirectory("loom-identity-").FullName;
        try
        {
            var path = Path.Combine(dir, "state.db");
            var stores = new List<IStore>();
            for (var i = 0; i < 3; i++)
            {
                stores.Add(await SqliteStore.OpenAsync(path));
            }

            var seen = new ConcurrentDictionary<string, ConcurrentBag<uint>>();
            await Task.WhenAll(Enumerable.Range(0, 6).Select(n => Task.Run(async () =>
            {
                var allocator = new IdentityAllocator(stores[n % stores.Count], $"node{n}");
                var random = new Random(n);
                for (var i = 0; i < 15; i++)
                {
                    var labels = Sets[random.Next(Sets.Length)];
                    seen.GetOrAdd(labels.Canonical, _ => []).Add((await allocator.AcquireAsync(labels)).Id);
                }
            })));

            Assert.All(seen.Values, ids => Assert.Single(ids.Distinct()));
            Assert.Equal(seen.Count, seen.Values.Select(ids => ids.First()).Distinct().Count());
            var (records, _) = await stores[0].ListAsync(Kinds.Identity);
            Assert.Equal(seen.Count, records.Count);
            Assert.All(records, r => Assert.Contains(r.Value.Id, seen[SecurityLabels.FromLabels(r.Value.Labels).Canonical]));
            foreach (var s in stores)
            {
                await s.DisposeAsync();
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
