using CsCheck;

using Loom.Linux.Bpf;

namespace Loom.Linux.Tests.Bpf;

/// <summary>Map CRUD on every map type of bpf/test_maps.o, with struct keys and values.</summary>
public class BpfMapTests
{
    private enum Op
    {
        UpdateAny,
        UpdateNoExist,
        UpdateExist,
        Delete,
    }

    [Theory]
    [InlineData("test_hash", BpfMapType.Hash)]
    [InlineData("test_lru", BpfMapType.LruHash)]
    public void Hash_maps_follow_a_dictionary_model_under_random_updates_and_deletes(string mapName, BpfMapType type)
    {
        using var obj = BpfObject.Load(BpfTestEnv.ObjectPath("test_maps.o"));
        var map = obj.Map<TestKey, TestValue>(mapName);
        Assert.Equal(type, map.Map.Type);
        CheckAgainstModel(map, i => new TestKey((uint)(0x0a000000 + i), (ushort)(8000 + i), (byte)(i % 2 == 0 ? 6 : 17)),
            v => new TestValue(v, v * 3, (uint)v));
    }

    [Fact]
    public void Lpm_trie_follows_a_dictionary_model_for_exact_prefixes()
    {
        using var obj = BpfObject.Load(BpfTestEnv.ObjectPath("test_maps.o"));
        var map = obj.Map<LpmV4Key, uint>("test_lpm");
        Assert.Equal(BpfMapType.LpmTrie, map.Map.Type);
        // Canonical prefixes (host bits zero): 10.i.0.0/16 and 10.0.0.0/8-ish variety.
        CheckAgainstModel(map, i => i < 8 ? new LpmV4Key(16, Ip(10, (byte)i, 0, 0)) : new LpmV4Key((uint)(24 + (i % 9)), Ip(192, 168, (byte)i, 0)),
            v => (uint)v);
    }

    [Fact]
    public void Lpm_trie_lookup_is_longest_prefix_match()
    {
        using var obj = BpfObject.Load(BpfTestEnv.ObjectPath("test_maps.o"));
        var map = obj.Map<LpmV4Key, uint>("test_lpm");
        map.Update(new LpmV4Key(8, Ip(10, 0, 0, 0)), 1);
        map.Update(new LpmV4Key(16, Ip(10, 1, 0, 0)), 2);
        map.Update(new LpmV4Key(32, Ip(10, 1, 2, 3)), 3);

        Assert.Equal(3u, map.Lookup(new LpmV4Key(32, Ip(10, 1, 2, 3))));
        Assert.Equal(2u, map.Lookup(new LpmV4Key(32, Ip(10, 1, 2, 4))));
        Assert.Equal(1u, map.Lookup(new LpmV4Key(32, Ip(10, 2, 0, 1))));
        Assert.False(map.TryLookup(new LpmV4Key(32, Ip(11, 0, 0, 1)), out _));
        Assert.Equal(3, map.Count);
    }

    [Fact]
    public void Array_has_every_index_zeroed_updates_in_place_and_refuses_delete()
    {
        using var obj = BpfObject.Load(BpfTestEnv.ObjectPath("test_maps.o"));
        var map = obj.Map<uint, TestValue>("test_array");
        Assert.Equal(BpfMapType.Array, map.Map.Type);
        Assert.Equal(64, map.Count);
        Assert.Equal(Enumerable.Range(0, 64).Select(i => (uint)i), map.Keys());
        Assert.Equal(default, map.Lookup(5));

        map.Update(5, new TestValue(1, 2, 3));
        Assert.Equal(new TestValue(1, 2, 3), map.Lookup(5));
        map.Update(5, new TestValue(4, 5, 6), BpfUpdate.Exist);
        Assert.Equal(new TestValue(4, 5, 6), map.Lookup(5));

        // Array slots always exist: NOEXIST fails with EEXIST, out-of-range with E2BIG, delete with EINVAL.
        Assert.Equal(17, Assert.Throws<BpfException>(() => map.Update(5, default, BpfUpdate.NoExist)).Errno);
        Assert.Equal(7, Assert.Throws<BpfException>(() => map.Update(64, default)).Errno);
        Assert.Equal(22, Assert.Throws<BpfException>(() => map.Delete(5)).Errno);
        Assert.False(map.TryLookup(64, out _));
    }

    [Fact]
    public void Per_cpu_array_holds_one_value_per_possible_cpu()
    {
        using var obj = BpfObject.Load(BpfTestEnv.ObjectPath("test_maps.o"));
        var map = obj.PerCpuMap<uint, PktCount>("pkt_counts");
        Assert.Equal(BpfMapType.PerCpuArray, map.Map.Type);
        Assert.InRange(map.Cpus, 1, 8192);
        Assert.Equal(BpfFs.PossibleCpus, map.Cpus);
        Assert.Equal(256, map.Count);

        var values = Enumerable.Range(0, map.Cpus).Select(c => new PktCount((ulong)c + 1, (ulong)c * 100)).ToArray();
        map.Update(7, values);
        Assert.Equal(values, map.Lookup(7));
        Assert.All(map.Lookup(8), v => Assert.Equal(default, v));

        map.UpdateAll(7, new PktCount(9, 9));
        Assert.All(map.Lookup(7), v => Assert.Equal(new PktCount(9, 9), v));
        Assert.Throws<ArgumentException>(() => map.Update(7, new PktCount[map.Cpus + 1]));
    }

    [Fact]
    public void Typed_views_refuse_struct_sizes_that_do_not_match_the_map()
    {
        using var obj = BpfObject.Load(BpfTestEnv.ObjectPath("test_maps.o"));
        Assert.Throws<ArgumentException>(() => obj.Map<uint, TestValue>("test_hash"));
        Assert.Throws<ArgumentException>(() => obj.Map<TestKey, ulong>("test_hash"));
        Assert.Throws<ArgumentException>(() => obj.Map<uint, PktCount>("pkt_counts"));
        Assert.Throws<ArgumentException>(() => obj.PerCpuMap<TestKey, TestValue>("test_hash"));
        Assert.Throws<KeyNotFoundException>(() => obj.Map("no_such_map"));
    }

    internal static uint Ip(byte a, byte b, byte c, byte d) => (uint)(a | (b << 8) | (c << 16) | (d << 24));

    private static void CheckAgainstModel<TKey, TValue>(BpfMap<TKey, TValue> map, Func<int, TKey> keyOf, Func<ulong, TValue> valueOf)
        where TKey : unmanaged
        where TValue : unmanaged
    {
        var ops = Gen.Select(Gen.Enum<Op>(), Gen.Int[0, 15], Gen.ULong[0, 1000]).Array[1, 50];
        ops.Sample(seq =>
        {
            map.Clear();
            var model = new Dictionary<TKey, TValue>();
            foreach (var (op, k, v) in seq)
            {
                var key = keyOf(k);
                var value = valueOf(v);
                switch (op)
                {
                    case Op.Delete:
                        Assert.Equal(model.Remove(key), map.Delete(key));
                        break;
                    default:
                        var flags = op switch { Op.UpdateNoExist => BpfUpdate.NoExist, Op.UpdateExist => BpfUpdate.Exist, _ => BpfUpdate.Any };
                        var present = model.ContainsKey(key);
                        int? expected = flags switch
                        {
                            BpfUpdate.NoExist when present => 17, // EEXIST
                            BpfUpdate.Exist when !present => 2, // ENOENT
                            _ => null,
                        };
                        var actual = Record.Exception(() => map.Update(key, value, flags)) is BpfException ex ? ex.Errno : (int?)null;
                        Assert.Equal(expected, actual);
                        if (expected is null)
                        {
                            model[key] = value;
                        }

                        break;
                }

                Assert.Equal(model.TryGetValue(key, out var mv), map.TryLookup(key, out var got));
                Assert.Equal(mv, got);
            }

            Assert.Equal(model.Count, map.Count);
            var entries = map.Entries().ToDictionary(e => e.Key, e => e.Value);
            Assert.Equal(model, entries);
        }, iter: 60, threads: 1); // one kernel map: samples must not run in parallel
    }
}
