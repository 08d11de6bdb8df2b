using CsCheck;
using Loom.Linux.Bpf;
using Loom.Linux.Tests.Bpf;
using Loom.Testing.Fakes;

namespace Loom.Linux.Tests.Fakes;

/// <summary>FakeBpfMap against the kernel's maps (bpf/test_maps.o): same answers, same contents.</summary>
public class FakeBpfMapTests
{
    private enum Op
    {
        UpdateAny,
        UpdateNoExist,
        UpdateExist,
        Delete,
        Lookup,
    }

    [Fact]
    public void The_fake_hash_map_answers_random_operations_like_the_kernel()
    {
        using var obj = BpfObject.Load(BpfTestEnv.ObjectPath("test_maps.o"));
        var real = obj.Map<TestKey, TestValue>("test_hash");
        var ops = Gen.Select(Gen.Enum<Op>(), Gen.Int[0, 15], Gen.ULong[0, 1000]).Array[1, 50];
        ops.Sample(seq =>
        {
            real.Clear();
            var fake = new FakeBpfMap<TestKey, TestValue>("test_hash", real.Map.MaxEntries);
            foreach (var (op, k, v) in seq)
            {
                var key = new TestKey((uint)k, 80, 6);
                Assert.Equal(Apply(real, op, key, v), Apply(fake, op, key, v));
            }

            Assert.Equal(Sorted(real), Sorted(fake));
        }, iter: 40, threads: 1); // one kernel map: samples must not run in parallel
    }

    [Fact]
    public void A_full_hash_map_refuses_new_keys_with_E2BIG_but_updates_existing_ones_like_the_kernel()
    {
        using var obj = BpfObject.Load(BpfTestEnv.ObjectPath("test_maps.o"));
        var real = obj.Map<TestKey, TestValue>("test_hash");
        real.Clear();
        var max = real.Map.MaxEntries;
        var fake = new FakeBpfMap<TestKey, TestValue>("test_hash", max);
        foreach (IBpfMap<TestKey, TestValue> map in new IBpfMap<TestKey, TestValue>[] { real, fake })
        {
            for (var i = 0u; i < max; i++)
            {
                map.Update(new TestKey(i, 1, 6), new TestValue(i, 0, 0));
            }

            var full = Assert.Throws<BpfException>(() => map.Update(new TestKey(max, 1, 6), default));
            Assert.Equal(Errno.E2BIG, full.Errno);
            map.Update(new TestKey(0, 1, 6), new TestValue(7, 7, 7));
            Assert.True(map.Delete(new TestKey(1, 1, 6)));
            map.Update(new TestKey(max, 1, 6), default, BpfUpdate.NoExist);
            Assert.Equal((int)max, map.Count);
        }

        Assert.Equal(Sorted(real), Sorted(fake));
        real.Clear();
    }

    [Fact]
    public void The_fake_array_map_has_the_kernels_array_semantics()
    {
        using var obj = BpfObject.Load(BpfTestEnv.ObjectPath("test_maps.o"));
        var real = obj.Map<uint, TestValue>("test_array");
        var fake = new FakeBpfMap<uint, TestValue>("test_array", real.Map.MaxEntries, BpfMapType.Array);
        foreach (IBpfMap<uint, TestValue> map in new IBpfMap<uint, TestValue>[] { real, fake })
        {
            map.Update(5, new TestValue(1, 2, 3));
            Assert.Equal(Errno.EEXIST, Assert.Throws<BpfException>(() => map.Update(5, default, BpfUpdate.NoExist)).Errno);
            Assert.Equal(Errno.E2BIG, Assert.Throws<BpfException>(() => map.Update(64, default)).Errno);
            Assert.Equal(Errno.EINVAL, Assert.Throws<BpfException>(() => map.Delete(5)).Errno);
            Assert.False(map.TryLookup(64, out _));
            Assert.Equal(default, map.Lookup(6));
            Assert.Equal(64, map.Count);
        }

        Assert.Equal(real.Entries(), fake.Entries());
        real.Update(5, default);
    }

    [Fact]
    public void Dump_lists_entries_sorted_with_the_given_formats_and_writes_are_counted()
    {
        var map = new FakeBpfMap<uint, ulong>("backends", 8, formatKey: k => $"svc {k}", formatValue: v => $"backend {v}");
        map.Update(2, 20);
        map.Update(1, 10);
        map.Update(3, 30);
        map.Delete(3);
        Assert.Equal("svc 1 => backend 10\nsvc 2 => backend 20\n", map.Dump());
        Assert.Equal(4, map.Writes);

        var hex = new FakeBpfMap<uint, ushort>("raw", 2);
        hex.Update(0x01020304, 0x0a0b);
        Assert.Equal("04030201 => 0b0a\n", hex.Dump());
        Assert.Throws<ArgumentException>(() => new FakeBpfMap<uint, uint>("lpm", 4, BpfMapType.LpmTrie));
    }

    private static string Apply(IBpfMap<TestKey, TestValue> map, Op op, TestKey key, ulong v)
    {
        try
        {
            return op switch
            {
                Op.Delete => $"delete {map.Delete(key)}",
                Op.Lookup => map.TryLookup(key, out var got) ? $"found {got}" : "absent",
                _ => Update(map, key, new TestValue(v, v, 0), op switch { Op.UpdateNoExist => BpfUpdate.NoExist, Op.UpdateExist => BpfUpdate.Exist, _ => BpfUpdate.Any }),
            };
        }
        catch (BpfException e)
        {
            return $"errno {e.Errno}";
        }
    }

    private static string Update(IBpfMap<TestKey, TestValue> map, TestKey key, TestValue value, BpfUpdate flags)
    {
        map.Update(key, value, flags);
        return "updated";
    }

    private static List<string> Sorted<TKey, TValue>(IBpfMap<TKey, TValue> map)
        where TKey : unmanaged
        where TValue : unmanaged => [.. map.Entries().Select(e => $"{e.Key} {e.Value}").Order(StringComparer.Ordinal)];
}
