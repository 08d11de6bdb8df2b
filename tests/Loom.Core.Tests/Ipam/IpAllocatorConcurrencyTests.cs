using System.Diagnostics;
using Loom.Core.Ipam;

namespace Loom.Core.Tests.Ipam;

public sealed class IpAllocatorConcurrencyTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Parallel_allocators_with_their_own_lock_fds_never_collide()
    {
        const int Count = 64;
        var config = Configs.Simple(_dir.Path, "10.0.0.0/24", "fd00::/64");
        var results = new IReadOnlyList<IpAllocation>[Count];
        using var start = new Barrier(Count);
        var threads = Enumerable.Range(0, Count).Select(i => new Thread(() =>
        {
            using var allocator = IpAllocator.Open(config); // one open(2) of the lock file each
            start.SignalAndWait();
            results[i] = allocator.Allocate(new Attachment($"c{i}", "eth0"));
        })).ToList();

        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        Assert.Equal(Count, results.Select(r => r[0].Address).Distinct().Count());
        Assert.Equal(Count, results.Select(r => r[1].Address).Distinct().Count());
        using var check = IpAllocator.Open(config);
        Assert.Equal(2 * Count, check.ListAllocations().Count);
    }

    [Fact]
    public void One_allocator_shared_by_threads_never_collides()
    {
        const int Count = 50;
        using var allocator = IpAllocator.Open(Configs.Simple(_dir.Path, "10.0.0.0/24"));
        var addresses = new System.Collections.Concurrent.ConcurrentBag<string>();
        Parallel.For(0, Count, new ParallelOptions { MaxDegreeOfParallelism = 16 },
            i => addresses.Add(IpMath.Format(allocator.Allocate(new Attachment($"c{i}", "eth0"))[0].Address)));
        Assert.Equal(Count, addresses.Distinct().Count());
    }

    [Fact]
    public void Lock_is_an_flock_seen_by_other_processes()
    {
        using var store = new DiskStore(Path.Combine(_dir.Path, "net"));
        var lockFile = Path.Combine(store.Directory, "lock");
        Assert.Equal(0, RunFlock("-n", lockFile, "true"));
        using (store.Lock())
        {
            Assert.Equal(1, RunFlock("-n", "-E", "1", lockFile, "true"));
        }

        Assert.Equal(0, RunFlock("-n", lockFile, "true"));
    }

    [Fact]
    public async Task Allocation_waits_while_another_process_holds_the_lock()
    {
        var config = Configs.Simple(_dir.Path, "10.0.0.0/24");
        using var allocator = IpAllocator.Open(config);
        var lockFile = Path.Combine(config.NetworkDirectory, "lock");

        using var holder = StartFlock(lockFile, "sh", "-c", "echo locked; read _");
        Assert.Equal("locked", await holder.StandardOutput.ReadLineAsync());

        var allocation = Task.Run(() => allocator.Allocate(new Attachment("c0", "eth0")));
        await Task.Delay(500);
        Assert.False(allocation.IsCompleted, "allocation must block on the other process's flock");

        holder.StandardInput.WriteLine(); // let the holder exit, releasing the lock
        await holder.WaitForExitAsync();
        var result = await allocation.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("10.0.0.2", IpMath.Format(result[0].Address));
    }

    private static int RunFlock(params string[] args)
    {
        using var process = StartFlock(args);
        process.WaitForExit();
        return process.ExitCode;
    }

    private static Process StartFlock(params string[] args)
    {
        var info = new ProcessStartInfo("flock") { RedirectStandardOutput = true, RedirectStandardInput = true };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        return Process.Start(info)!;
    }
}
