using System.Text.Json;
using CsCheck;
using Loom.Core.Model;
using Loom.Core.Store;
using static Loom.Core.Tests.Watch.CacheHarness;

namespace Loom.Core.Tests.Watch;

public class ObjectCachePropertyTests
{
    private enum Op
    {
        Put,
        Delete,
        Malformed,
        Break,
        Compact,
    }

    [Fact]
    public async Task After_any_writes_breaks_and_compactions_the_cache_equals_a_fresh_list()
    {
        var op = Gen.Select(Gen.Enum<Op>(), Gen.Int[0, 5], Gen.Int[0, 2]);
        await op.Array[1, 30].SampleAsync(async ops =>
        {
            await using var h = new CacheHarness();
            await h.PutAsync(Ep("seed", "n0"));
            await h.StartAsync();
            foreach (var (kind, k, n) in ops)
            {
                switch (kind)
                {
                    case Op.Put: await h.PutAsync(Ep($"e{k}", $"n{n}", $"10.0.0.{k + 1}")); break;
                    case Op.Delete: await h.DeleteAsync($"default/e{k}"); break;
                    case Op.Malformed: await h.PutRawAsync($"default/e{k}", "{\"Name\":"); break;
                    case Op.Break: h.Store.BreakWatches(); break;
                    case Op.Compact:
                        await h.Store.CompactAsync(await h.Store.GetRevisionAsync());
                        h.Store.BreakWatches();
                        break;
                }
            }

            // A last write every subscriber must see: everything before it has been delivered by then.
            await h.SettleAsync(await h.PutAsync(Ep("sentinel", "n0")));

            var expected = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var item in (await h.Store.ListAsync(Kinds.Endpoint.Name)).Items)
            {
                if (TryDecode(item.Value) is not null)
                {
                    expected[item.Key] = item.ModRevision;
                }
            }

            var cached = h.Cache.Snapshot.ToDictionary(p => p.Key, p => p.Value.Revision, StringComparer.Ordinal);
            Assert.Equal(Text(expected), Text(cached));
            h.Mirror.AssertConsistent();
            Assert.Equal(Text(expected), Text(h.Mirror.Table.ToDictionary(p => p.Key, p => p.Value.Revision)));
            for (var n = 0; n < 3; n++)
            {
                var node = $"n{n}";
                Assert.Equal(h.Cache.Snapshot.Values.Where(v => v.Value.Node == node).Select(v => v.Key).Order(StringComparer.Ordinal),
                    h.Cache.ByIndex("node", node).Select(v => v.Key));
            }
        }, iter: 100);
    }

    private static List<string> Text(Dictionary<string, long> table) =>
        [.. table.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}@{p.Value}")];

    private static Endpoint? TryDecode(string json)
    {
        try
        {
            return JsonSerializer.Deserialize(json, Kinds.Endpoint.TypeInfo);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
