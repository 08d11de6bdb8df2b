using Loom.Linux.Bpf;

namespace Loom.Linux.Tests.Bpf;

/// <summary>Every object built from bpf/ passes the verifier on this kernel; pinned maps survive the object.</summary>
public class BpfObjectTests
{
    private static readonly string[] TestMapsMaps = ["pkt_counts", "test_array", "test_hash", "test_lpm", "test_lru"];
    private static readonly string[] ReplacedHash = ["test_hash"];

    [Theory]
    [InlineData("test_maps.o", new[] { "count_packets" }, new[] { "test_hash", "test_lru", "test_array", "test_lpm", "pkt_counts" })]
    [InlineData("lb4.o", new[] { "lb4_from_pod", "lb4_to_pod", "lb4_connect4", "lb4_sendmsg4", "lb4_recvmsg4", "lb4_from_net", "lb4_to_net" }, new[] { "lb4_svc", "lb4_backends", "lb4_revnat", "lb4_sk_rev", "lb4_stats", "lb4_snat", "lb4_config" })]
    public void Object_loads_and_the_verifier_accepts_every_program(string file, string[] programs, string[] maps)
    {
        using var obj = BpfObject.Open(BpfTestEnv.ObjectPath(file));
        Assert.False(obj.IsLoaded);
        Assert.Equal(programs.Order(), obj.ProgramNames.Order());
        Assert.Superset(maps.ToHashSet(), obj.MapNames.ToHashSet());
        obj.Load();
        foreach (var p in programs)
        {
            Assert.True(obj.Program(p).Id > 0);
        }

        foreach (var m in maps)
        {
            Assert.Equal(m, obj.Map(m).Name);
        }
    }

    [Fact]
    public void A_rejected_program_reports_the_verifier_log()
    {
        using var obj = BpfObject.Open(BpfTestEnv.ObjectPath("test_reject.o"));
        var ex = Assert.Throws<BpfException>(() => obj.Load());
        Assert.Equal("bpf_object__load", ex.Operation);
        Assert.NotEqual(0, ex.Errno);
        Assert.Contains("invalid access to packet", ex.Log, StringComparison.Ordinal);
        Assert.Contains("invalid access to packet", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Maps_and_programs_of_a_disposed_object_refuse_use()
    {
        var obj = BpfObject.Load(BpfTestEnv.ObjectPath("test_maps.o"));
        var map = obj.Map<uint, TestValue>("test_array");
        var prog = obj.Program("count_packets");
        obj.Dispose();
        Assert.Throws<ObjectDisposedException>(() => map.Lookup(0));
        Assert.Throws<ObjectDisposedException>(() => prog.Fd);
    }

    [Fact]
    public void Missing_object_file_is_a_clear_error()
    {
        var ex = Assert.Throws<FileNotFoundException>(() => BpfObject.Open("/nonexistent/x.o"));
        Assert.Contains("make build", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bpffs_is_mounted_and_recognised()
    {
        BpfFs.EnsureMounted();
        Assert.True(BpfFs.IsBpfFs(BpfFs.DefaultRoot));
        Assert.False(BpfFs.IsBpfFs("/tmp"));
    }

    [Fact]
    public void Pinned_maps_survive_the_object_and_are_reused_by_the_next_load()
    {
        using var pins = new TestPinDir();
        var key = new TestKey(0x0100000a, 80, 6);
        using (var first = BpfObject.Load(BpfTestEnv.ObjectPath("test_maps.o"), pins.Path))
        {
            Assert.Empty(first.ReusedMaps);
            first.Map<TestKey, TestValue>("test_hash").Update(key, new TestValue(42, 4200, 1));
            first.PerCpuMap<uint, PktCount>("pkt_counts").UpdateAll(3, new PktCount(7, 70));
        }

        foreach (var m in TestMapsMaps)
        {
            Assert.True(File.Exists(Path.Combine(pins.Path, m)), m);
        }

        // The object is closed; the pin alone keeps the map and its contents.
        using (var pinned = BpfMap.OpenPinned(Path.Combine(pins.Path, "test_hash")))
        {
            Assert.Equal(BpfMapType.Hash, pinned.Type);
            Assert.Equal(new TestValue(42, 4200, 1), pinned.As<TestKey, TestValue>().Lookup(key));
        }

        using var second = BpfObject.Load(BpfTestEnv.ObjectPath("test_maps.o"), pins.Path);
        Assert.Equal(TestMapsMaps, second.ReusedMaps.Order());
        Assert.Equal(new TestValue(42, 4200, 1), second.Map<TestKey, TestValue>("test_hash").Lookup(key));
        Assert.All(second.PerCpuMap<uint, PktCount>("pkt_counts").Lookup(3), v => Assert.Equal(new PktCount(7, 70), v));
        // Same kernel map, not a copy.
        using var again = BpfMap.OpenPinned(Path.Combine(pins.Path, "test_hash"));
        Assert.Equal(again.Id, second.Map("test_hash").Id);
    }

    [Fact]
    public void A_pin_of_another_shape_is_replaced_not_reused()
    {
        using var pins = new TestPinDir();
        using (var first = BpfObject.Load(BpfTestEnv.ObjectPath("test_maps.o")))
        {
            // Pin the array (key 4 bytes) where the hash map (key 8 bytes) will look for its pin.
            first.Map("test_array").Pin(Path.Combine(pins.Path, "test_hash"));
        }

        using var obj = BpfObject.Load(BpfTestEnv.ObjectPath("test_maps.o"), pins.Path);
        Assert.Equal(ReplacedHash, obj.ReplacedMaps);
        Assert.Equal(0, obj.Map<TestKey, TestValue>("test_hash").Count);
        using var pinned = BpfMap.OpenPinned(Path.Combine(pins.Path, "test_hash"));
        Assert.Equal(BpfMapType.Hash, pinned.Type);
    }

    [Fact]
    public void Programs_can_be_pinned_and_reopened()
    {
        using var pins = new TestPinDir();
        var path = Path.Combine(pins.Path, "count_packets");
        uint id;
        using (var obj = BpfObject.Load(BpfTestEnv.ObjectPath("test_maps.o")))
        {
            var prog = obj.Program("count_packets");
            id = prog.Id;
            prog.Pin(path);
        }

        using var reopened = BpfProgram.OpenPinned(path);
        Assert.Equal(id, reopened.Id);
        Assert.Equal(3u, reopened.ProgramType); // BPF_PROG_TYPE_SCHED_CLS
    }

    [Fact]
    public void Sweep_removes_pins_and_cgroups_of_dead_runs_only()
    {
        var dead = 4_000_000;
        while (RunPrefix.IsAlive(dead))
        {
            dead--;
        }

        var root = Path.Combine(BpfFs.DefaultRoot, BpfTestEnv.UniqueName("sweeproot"));
        var cgRoot = Path.Combine(BpfTestEnv.CgroupRoot, BpfTestEnv.UniqueName("sweeproot"));
        Directory.CreateDirectory(root);
        Directory.CreateDirectory(cgRoot);
        try
        {
            var stale = Path.Combine(root, $"{BpfTestEnv.Base}{dead}-1-pins");
            var live = Path.Combine(root, $"{RunPrefix.For(BpfTestEnv.Base)}999-pins");
            using (var obj = BpfObject.Load(BpfTestEnv.ObjectPath("test_maps.o"), stale))
            {
                obj.Program("count_packets").Pin(Path.Combine(stale, "prog"));
            }

            Directory.CreateDirectory(live);
            var staleCg = Path.Combine(cgRoot, $"{BpfTestEnv.Base}{dead}-1-cg");
            Directory.CreateDirectory(staleCg);

            Assert.Equal(2, BpfTestEnv.Sweep(root, cgRoot));
            Assert.False(Directory.Exists(stale));
            Assert.False(Directory.Exists(staleCg));
            Assert.True(Directory.Exists(live));
        }
        finally
        {
            BpfFs.RemoveTree(root);
            TestCgroup.TryRemove(Path.Combine(cgRoot, $"{BpfTestEnv.Base}{dead}-1-cg"));
            TestCgroup.TryRemove(cgRoot);
        }
    }
}
