using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Linux;

namespace Loom.Lab.Tests;

/// <summary>
/// The Flannel-style overlay with real agents: the kernel state on every node matches flannel's vxlan scheme,
/// a removed node disappears from its peers, and agents killed with SIGKILL and restarted never cost a request.
/// </summary>
[Collection(SequentialLab.Name)]
public sealed class OverlayTests
{
    private static readonly string[] Names = ["k8s-ctr", "k8s-w1", "k8s-w2"];

    [Fact]
    public async Task Every_node_has_flannels_neighbour_and_fdb_entries_and_a_removed_node_disappears_from_its_peers()
    {
        var o = TestLab.Options(agents: true);
        try
        {
            var state = await Lab.UpAsync(o, TextWriter.Null);
            var nodes = await Lab.ReadNodesAsync(state);
            foreach (var self in Names)
            {
                var ns = state.Node(self).Netns;
                foreach (var peer in Names.Where(p => p != self))
                {
                    var p = nodes[peer];
                    var vtepIp = p.PodCidrs[0].BaseAddress;
                    await TestLab.Eventually(ns, ["ip", "neigh", "show", "dev", "loom.1"], s => s.Contains(vtepIp.ToString(), StringComparison.Ordinal));
                    Assert.Contains($"{vtepIp} lladdr {p.VtepMac} PERMANENT", await TestLab.Capture(ns, "ip", "neigh", "show", "dev", "loom.1"), StringComparison.Ordinal);
                    Assert.Contains($"{p.VtepMac} dst {p.UnderlayIp} self permanent", await TestLab.Capture(ns, "bridge", "fdb", "show", "dev", "loom.1"), StringComparison.Ordinal);
                    Assert.Contains($"{p.PodCidrs[0]} via {vtepIp} dev loom.1 proto 76 onlink", await TestLab.Capture(ns, "ip", "route"), StringComparison.Ordinal);
                }

                var link = await TestLab.Capture(ns, "ip", "-d", "link", "show", "loom.1");
                Assert.Contains("mtu 1450", link, StringComparison.Ordinal);
                Assert.Contains("vxlan id 1 local " + nodes[self].UnderlayIp + " dev eth1", link, StringComparison.Ordinal);
                Assert.Contains("dstport 8472 nolearning", link, StringComparison.Ordinal);
            }

            // Remove k8s-w2 as an operator would: stop its agent, delete the node from the cluster.
            var w2 = state.Node("k8s-w2");
            LabProcesses.Kill(w2.AgentPid!.Value);
            var ctrConfig = Path.Combine(state.NodeDir("k8s-ctr"), "agent.json");
            Assert.Equal(0, await Lab.NodeExecAsync(state, "k8s-ctr", [state.LoomPath, "node", "delete", "k8s-w2", "--config", ctrConfig]));
            var gone = nodes["k8s-w2"];
            foreach (var self in Names.Where(n => n != "k8s-w2"))
            {
                var ns = state.Node(self).Netns;
                var routes = await TestLab.Eventually(ns, ["ip", "route"], s => !s.Contains(gone.PodCidrs[0].ToString(), StringComparison.Ordinal));
                Assert.DoesNotContain(gone.PodCidrs[0].ToString(), routes, StringComparison.Ordinal);
                Assert.DoesNotContain(gone.VtepMac!, await TestLab.Capture(ns, "ip", "neigh", "show", "dev", "loom.1"), StringComparison.Ordinal);
                Assert.DoesNotContain(gone.VtepMac!, await TestLab.Capture(ns, "bridge", "fdb", "show", "dev", "loom.1"), StringComparison.Ordinal);
                Assert.Contains("10.244.", routes, StringComparison.Ordinal); // the other peer is still there
            }

            Assert.False((await Lab.ReadNodesAsync(state)).ContainsKey("k8s-w2"));
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }
    }

    [Fact]
    public async Task Agents_killed_with_sigkill_and_restarted_lose_no_request_of_a_continuous_probe()
    {
        var o = TestLab.Options(agents: true);
        try
        {
            var state = await Lab.UpAsync(o, TextWriter.Null);
            var client = Lab.AddPod(state, "probe", "k8s-ctr");
            var server = Lab.AddPod(state, "echo", "k8s-w1");
            var serverIp = IPAddress.Parse(server.Ip!.Split('/')[0]);
            var before = await Lab.ReadNodesAsync(state);

            using var serverNs = NetNs.Open(server.Netns);
            using var clientNs = NetNs.Open(client.Netns);
            using var listener = NetNs.Run(serverNs, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            listener.Bind(new IPEndPoint(serverIp, 9000));
            listener.Listen(128);
            using var stop = new CancellationTokenSource();
            var echo = TestLab.EchoAsync(listener, stop.Token);

            // New connections every 20 ms, across the tunnel, for the whole kill / restart cycle.
            var (ok, failed, errors) = await TestLab.ProbeAcrossAgentRestartAsync(state, clientNs, new IPEndPoint(serverIp, 9000), ["k8s-ctr", "k8s-w1"]);
            await stop.CancelAsync();
            await echo;

            Assert.True(failed == 0, $"{failed} of {ok + failed} probes failed across the agents' restart: {string.Join("; ", errors.Take(5))}");
            Assert.True(ok >= 100, $"only {ok} probes ran");
            Console.WriteLine($"probe: {ok} answered; slow ones: {string.Join("; ", errors)}");
            var after = await Lab.ReadNodesAsync(state);
            foreach (var n in Names)
            {
                Assert.Equal(before[n].VtepMac, after[n].VtepMac); // the device was adopted, not recreated
                Assert.Equal(before[n].PodCidrs[0], after[n].PodCidrs[0]);
            }
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }
    }

    internal static async Task WaitForRestartAsync(LabState state, string node)
    {
        var log = Path.Combine(state.NodeDir(node), "agent.log");
        var sw = Stopwatch.StartNew();
        while (File.ReadAllText(log).Split("ready:").Length < 3) // the first start and the restart each log one
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), $"agent of {node} did not come back:\n{Lab.LogTail(log)}");
            await Task.Delay(100);
        }
    }
}
