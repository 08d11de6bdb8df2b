using System.Net;
using Loom.Agent;
using Loom.Linux;

namespace Loom.Lab.Tests;

/// <summary>The lab without agents: namespaces, the underlay, node exec, crash recovery.</summary>
[Collection(SequentialLab.Name)]
public sealed class TopologyTests
{
    [Fact]
    public async Task Up_builds_underlay_and_nodes_and_down_leaves_nothing()
    {
        var rootBefore = TestLab.RootLinks();
        var o = TestLab.Options();
        try
        {
            var state = await Lab.UpAsync(o, TextWriter.Null);
            Assert.Equal([o.Prefix + "k8s-ctr", o.Prefix + "k8s-w1", o.Prefix + "k8s-w2", o.Prefix + "underlay"], TestLab.Namespaces(o.Prefix));
            Assert.Equal(["k8s-ctr", "k8s-w1", "k8s-w2"], state.Nodes.Select(n => n.Name));
            Assert.NotNull(Lab.Load(o.LabDir));

            // The underlay: a bridge with one port per node.
            var bridgeLinks = await TestLab.Capture(state.UnderlayNetns, "ip", "-o", "link", "show", "master", "br-underlay");
            foreach (var n in state.Nodes)
            {
                Assert.Contains($" {n.Name}@", bridgeLinks, StringComparison.Ordinal);
            }

            // Each node: lo and eth1 only, a default route to the underlay's router (which routes nowhere), forwarding on.
            foreach (var n in state.Nodes)
            {
                var links = (await TestLab.Capture(n.Netns, "ip", "-br", "link")).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                    .Select(l => l.Split(' ')[0].Split('@')[0]).ToList();
                Assert.Equal(["lo", "eth1"], links);
                Assert.Contains($"inet {n.Ip}/24", await TestLab.Capture(n.Netns, "ip", "-4", "addr", "show", "eth1"), StringComparison.Ordinal);
                Assert.Contains("mtu 1500", await TestLab.Capture(n.Netns, "ip", "link", "show", "eth1"), StringComparison.Ordinal);
                Assert.Contains($"default via {Lab.UnderlayRouter} dev eth1", await TestLab.Capture(n.Netns, "ip", "route"), StringComparison.Ordinal);
                Assert.Equal("1", (await TestLab.Capture(n.Netns, "sysctl", "-n", "net.ipv4.ip_forward")).Trim());
                Assert.True(Directory.Exists(Path.Combine(o.LabDir, "nodes", n.Name, "net.d")));
            }

            Assert.Equal(rootBefore, TestLab.RootLinks());
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }

        Assert.Empty(TestLab.Namespaces(o.Prefix));
        Assert.False(Directory.Exists(o.LabDir));
        Assert.Null(Lab.Load(o.LabDir));
        Assert.Equal(rootBefore, TestLab.RootLinks());
        Assert.False(await Lab.DownAsync(o.LabDir, o.Prefix), "a second down finds nothing");
    }

    [Fact]
    public async Task Node_exec_runs_inside_the_node_and_returns_its_exit_code()
    {
        var o = TestLab.Options();
        try
        {
            var state = await Lab.UpAsync(o, TextWriter.Null);
            var addr = await TestLab.Capture(state.Node("k8s-w1").Netns, "ip", "-br", "addr");
            Assert.Contains("192.168.10.101/24", addr, StringComparison.Ordinal);
            Assert.DoesNotContain("192.168.10.100", addr, StringComparison.Ordinal);
            Assert.Equal(7, await Lab.NodeExecAsync(state, "k8s-w2", ["sh", "-c", "exit 7"]));
            Assert.Equal(0, await Lab.NodeExecAsync(state, "k8s-w2", ["sh", "-c", "ip -br addr show eth1 | grep -q 192.168.10.102/24"]));
            await Assert.ThrowsAsync<LabException>(() => Lab.NodeExecAsync(state, "k8s-w9", ["true"]));
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }
    }

    [Fact]
    public async Task Nodes_reach_each_other_over_the_underlay()
    {
        var o = TestLab.Options();
        try
        {
            var state = await Lab.UpAsync(o, TextWriter.Null);
            foreach (var target in state.Nodes.Skip(1))
            {
                Assert.Equal(0, (await LabProcesses.CaptureAsync(state.Node("k8s-ctr").Netns, ["ping", "-c1", "-W2", target.Ip])).ExitCode);
            }

            var reply = await TestLab.TcpExchange(state.Node("k8s-w2").Netns, state.Node("k8s-w1").Netns, IPAddress.Parse("192.168.10.102"), 7000, "hello-w2");
            Assert.Equal("echo:hello-w2", reply);
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }
    }

    [Fact]
    public async Task Nodes_option_adds_workers()
    {
        var o = TestLab.Options(nodes: 5);
        try
        {
            var state = await Lab.UpAsync(o, TextWriter.Null);
            Assert.Equal(["k8s-ctr", "k8s-w1", "k8s-w2", "k8s-w3", "k8s-w4"], state.Nodes.Select(n => n.Name));
            Assert.Equal("192.168.10.104", state.Node("k8s-w4").Ip);
            Assert.Equal(0, (await LabProcesses.CaptureAsync(state.Node("k8s-w4").Netns, ["ping", "-c1", "-W2", "192.168.10.100"])).ExitCode);
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }
    }

    [Fact]
    public async Task Up_after_a_crash_removes_the_leftovers_and_comes_up()
    {
        var o = TestLab.Options(agents: true, store: LabStoreKind.Etcd);
        try
        {
            var first = await Lab.UpAsync(o, TextWriter.Null);
            var etcd = first.EtcdPid!.Value;
            // kill -9 of the agents (the lab's CLI is long gone anyway); etcd is left running, orphaned.
            foreach (var n in first.Nodes)
            {
                LabProcesses.Kill(n.AgentPid!.Value);
            }

            // A workload in a node whose command line says nothing about the lab: found by its namespace.
            var sleeper = LabProcesses.StartDetached(first.Node("k8s-w1").Netns, Path.Combine(o.LabDir, "sleep.log"), "/bin/sleep", ["600"]);
            Assert.True(LabProcesses.IsAlive(sleeper));

            // The crash: the state file is gone, processes and namespaces are left behind.
            File.Delete(LabState.StateFile(o.LabDir));
            Assert.Null(Lab.Load(o.LabDir));

            var second = await Lab.UpAsync(o, TextWriter.Null);
            Assert.False(LabProcesses.IsAlive(etcd), "the old etcd was stopped");
            Assert.False(LabProcesses.IsAlive(sleeper), "the old workload was stopped");
            Assert.NotEqual(etcd, second.EtcdPid);
            Assert.True(LabProcesses.IsAlive(second.EtcdPid!.Value));
            Assert.Equal(4, TestLab.Namespaces(o.Prefix).Count);
            Assert.All(second.Nodes, n => Assert.True(LabProcesses.IsAlive(n.AgentPid!.Value)));
            Assert.All((await Lab.ReadNodesAsync(second)).Values, n => Assert.True(n.Ready));

            // kill -9 of everything, then down without a state file still cleans up.
            LabProcesses.Kill(second.EtcdPid.Value);
            foreach (var n in second.Nodes)
            {
                LabProcesses.Kill(n.AgentPid!.Value);
            }

            File.Delete(LabState.StateFile(o.LabDir));
            Assert.True(await Lab.DownAsync(o.LabDir, o.Prefix));
            Assert.Empty(TestLab.Namespaces(o.Prefix));
            Assert.Empty(TestLab.ProcessesMentioning(o.LabDir));
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }
    }

    [Fact]
    public async Task Agent_config_is_what_the_agent_reads()
    {
        var o = TestLab.Options(store: LabStoreKind.Sqlite);
        try
        {
            var state = await Lab.UpAsync(o, TextWriter.Null);
            var file = Path.Combine(o.LabDir, "agent-test.json");
            File.WriteAllText(file, Lab.AgentConfigJson(state, state.Node("k8s-w1")));
            var cfg = AgentConfig.Load(file);
            Assert.Equal("k8s-w1", cfg.Node);
            Assert.Equal("eth1", cfg.Iface);
            Assert.Equal("sqlite", cfg.Store.Type);
            Assert.Equal(Path.Combine(o.LabDir, "store.db"), cfg.Store.Path);
            Assert.Equal(Path.Combine(o.LabDir, "nodes", "k8s-w1", "net.d"), cfg.CniConfDir);
            Assert.Equal(Path.Combine(o.LabDir, "nodes", "k8s-w1", "run"), cfg.StateDir);
            Assert.Equal(Path.Combine(o.LabDir, "nodes", "k8s-w1", "ipam"), cfg.IpamDataDir);
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }
    }

    [Fact]
    public async Task Refuses_broad_lab_directories_and_prefixes()
    {
        await Assert.ThrowsAsync<LabException>(() => Lab.DownAsync("/tmp", "loomlab-"));
        await Assert.ThrowsAsync<LabException>(() => Lab.DownAsync("/", "loomlab-"));
        await Assert.ThrowsAsync<LabException>(() => Lab.DownAsync("/tmp/x-lab", "l"));
    }
}
