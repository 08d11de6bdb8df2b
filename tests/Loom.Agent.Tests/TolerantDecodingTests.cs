using System.Net;
using Loom.Core.Model;
using Loom.Core.Store;

namespace Loom.Agent.Tests;

/// <summary>One malformed stored object is reported and skipped; it does not hide the others of its kind.</summary>
public sealed class TolerantDecodingTests
{
    private static Service Web(string name) => new() { Namespace = "default", Name = name, ClusterIp = IPAddress.Parse("10.96.0.10") };

    [Fact]
    public async Task List_get_and_watch_skip_what_does_not_decode()
    {
        await using var store = MemoryStore.Create();
        await store.PutAsync(Kinds.Service, Web("a"));
        await store.PutAsync("service", "default/bad", "{\"namespace\": \"default\", \"name\": \"bad\", \"clusterIp\": \"not-an-ip\"}");
        await store.PutAsync("service", "default/junk", "{not json");
        await store.PutAsync(Kinds.Service, Web("z"));
        var invalid = new List<(string Key, string Reason)>();

        var (items, _) = await store.ListValidAsync(Kinds.Service, (k, r) => invalid.Add((k, r)));
        Assert.Equal(["default/a", "default/z"], items.Select(i => i.Key));
        Assert.Equal(["default/bad", "default/junk"], invalid.Select(i => i.Key));
        Assert.Contains("not an IP address: 'not-an-ip'", invalid[0].Reason, StringComparison.Ordinal);
        await Assert.ThrowsAnyAsync<System.Text.Json.JsonException>(() => store.ListAsync(Kinds.Service)); // the strict read still throws

        invalid.Clear();
        Assert.Null(await store.GetValidAsync(Kinds.Service, "default/junk", (k, r) => invalid.Add((k, r))));
        Assert.NotNull(await store.GetValidAsync(Kinds.Service, "default/a", (k, r) => invalid.Add((k, r))));
        Assert.Equal("default/junk", Assert.Single(invalid).Key);

        invalid.Clear();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var seen = new List<string>();
        await foreach (var e in store.WatchValidAsync(Kinds.Service, 0, (k, r) => invalid.Add((k, r)), cts.Token))
        {
            seen.Add(e.Key);
            if (e.Key == "default/z")
            {
                break;
            }
        }

        Assert.Equal(["default/a", "default/z"], seen);
        Assert.Equal(["default/bad", "default/junk"], invalid.Select(i => i.Key));
    }
}
