using System.Diagnostics;

using Loom.Testing;

namespace Loom.Linux.Tests;

public class NetNsTests
{
    [Fact]
    public void Create_is_visible_to_ip_netns_and_delete_removes_it()
    {
        string name;
        using (var ns = new TestNetns("vis"))
        {
            name = ns.Name;
            Assert.True(NetNs.Exists(name));
            Assert.Contains(name, NetNs.List());
            Assert.Contains(name, Shell.Run("ip", "netns list"));
            // The new namespace has only a loopback device, proving we are not in root.
            Assert.Equal("lo", Assert.Single(ns.Netlink.LinkList()).Name);
        }

        Assert.False(NetNs.Exists(name));
        Assert.DoesNotContain(name, NetNs.List());
    }

    [Fact]
    public void Delete_of_absent_namespace_succeeds()
    {
        NetNs.Delete(RunPrefix.For(TestNetns.Base) + "never-created");
    }

    [Fact]
    public void Run_executes_on_a_dedicated_thread_in_the_namespace_and_propagates_exceptions()
    {
        using var ns = new TestNetns("run");
        var caller = Environment.CurrentManagedThreadId;
        var (thread, inode) = ns.Run(() => (Environment.CurrentManagedThreadId, ThreadNsInode()));
        Assert.NotEqual(caller, thread);
        Assert.Equal(NsInode($"/var/run/netns/{ns.Name}"), inode);
        Assert.NotEqual(ThreadNsInode(), inode);

        var ex = Assert.Throws<InvalidOperationException>(() => ns.Run(() => throw new InvalidOperationException("boom")));
        Assert.Equal("boom", ex.Message);
    }

    [Fact]
    public void RunOnCurrentThread_enters_the_namespace_on_this_thread_and_comes_back_also_after_a_throw()
    {
        using var ns = new TestNetns("here");
        using var handle = NetNs.Open(ns.Name);
        var home = ThreadNsInode();
        var caller = Environment.CurrentManagedThreadId;
        var (thread, inode) = NetNs.RunOnCurrentThread(handle, () => (Environment.CurrentManagedThreadId, ThreadNsInode()));
        Assert.Equal(caller, thread);
        Assert.Equal(NsInode($"/var/run/netns/{ns.Name}"), inode);
        Assert.Equal(home, ThreadNsInode());

        Assert.Throws<InvalidOperationException>(() => NetNs.RunOnCurrentThread<int>(handle, () => throw new InvalidOperationException("boom")));
        Assert.Equal(home, ThreadNsInode());

        // The socket made inside stays bound to the namespace: it sees only that namespace's loopback.
        using var nl = Netlink.OpenInFromCurrentThread(handle);
        Assert.Equal("lo", Assert.Single(nl.LinkList()).Name);
        Assert.Equal(home, ThreadNsInode());
    }

    [Fact]
    public void OpenCurrent_inside_Run_refers_to_that_namespace()
    {
        using var ns = new TestNetns("cur");
        var inode = ns.Run(() =>
        {
            using var h = NetNs.OpenCurrent();
            return LinkInode($"/proc/thread-self/fd/{h.Fd}");
        });
        Assert.Equal(NsInode($"/var/run/netns/{ns.Name}"), inode);
    }

    [Fact]
    public void SweepStale_removes_namespaces_of_dead_pids_only()
    {
        var dead = DeadPid();
        var stale = $"{TestNetns.Base}{dead}-stale";
        using var live = new TestNetns("live");
        NetNs.Create(stale);
        try
        {
            var deleted = NetNs.SweepStale(TestNetns.Base);
            Assert.Contains(stale, deleted);
            Assert.False(NetNs.Exists(stale));
            Assert.True(NetNs.Exists(live.Name));
        }
        finally
        {
            NetNs.Delete(stale);
        }
    }

    [Theory]
    [InlineData("lt123-x", "lt", true, 123)]
    [InlineData("loom42-ab-c", "loom", true, 42)]
    [InlineData("lt-x", "lt", false, 0)]
    [InlineData("lt12x-", "lt", false, 0)]
    [InlineData("lt12", "lt", false, 0)]
    [InlineData("other1-x", "lt", false, 0)]
    public void RunPrefix_parses_pid(string name, string baseName, bool ok, int pid)
    {
        Assert.Equal(ok, RunPrefix.TryParsePid(name, baseName, out var parsed));
        Assert.Equal(pid, parsed);
    }

    [Fact]
    public void RunPrefix_round_trips_own_pid() =>
        Assert.True(RunPrefix.TryParsePid(RunPrefix.For("loom") + "x", "loom", out var pid) && pid == Environment.ProcessId);

    private static ulong NsInode(string path) => Shell.Inode(path);

    private static ulong ThreadNsInode() => LinkInode("/proc/thread-self/ns/net");

    // nsfs magic links read as "net:[4026531840]"; parsed in-process because a child process would see its own /proc/self.
    private static ulong LinkInode(string path)
    {
        var target = new FileInfo(path).LinkTarget!;
        return ulong.Parse(target.AsSpan(target.IndexOf('[', StringComparison.Ordinal) + 1, target.Length - target.IndexOf('[', StringComparison.Ordinal) - 2), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static int DeadPid()
    {
        using var p = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        p.WaitForExit();
        return p.Id;
    }
}
