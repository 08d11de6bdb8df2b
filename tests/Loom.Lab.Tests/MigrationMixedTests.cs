using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Loom.Core.Migration;
using Loom.Core.Selection;
using Loom.Core.Validation;
using Loom.Lab.Migration;
using Loom.Linux;
using Xunit.Abstractions;

namespace Loom.Lab.Tests;

/// <summary>
/// The migration's mixed cluster (issue 13): the default Flannel-style lab with the webpod sample, `migrate start`,
/// then one worker moved by hand (cordon, drain, label, agent restart, uncordon), and the cases users hit with
/// Cilium's guide checked while the cluster runs both networks.
/// </summary>
[Collection(SequentialLab.Name)]
public sealed class MigrationMixedTests(ITestOutputHelper output)
{
    private const string Moved = "k8s-w1";
    private static readonly IPNetwork OldPool = IPNetwork.Parse("10.244.0.0/16");
    private static readonly IPNetwork NewPool = IPNetwork.Parse("10.245.0.0/16");
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task One_worker_moved_by_hand_pods_of_both_networks_talk_and_the_guides_pitfalls_do_not_bite()
    {
        var o = TestLab.Options(agents: true);
        using var stop = new CancellationTokenSource();
        var servers = new List<IDisposable>();
        var log = new StringWriter();
        try
        {
            var state = await Lab.UpAsync(o, TextWriter.Null);
            await Lab.ApplyAsync(state, ManifestTests.Example("webpod.yaml"), log);
            var oldCtr = Lab.AddPod(state, "old-ctr", "k8s-ctr");
            var oldW2 = Lab.AddPod(state, "old-w2", "k8s-w2");
            var store = await Lab.OpenStoreAsync(state);
            await using (store)
            {
                await MigrationStart.RunAsync(store, null, TimeProvider.System);
            }

            // Every node runs the new network beside the old one before any node moves.
            foreach (var n in state.Nodes)
            {
                await WaitAsync(() => NetworkChecks.LinkExistsAsync(n.Netns, "loom_vxlan"), $"{n.Name} has no loom_vxlan after migrate start");
            }

            // The move, by hand: cordon, drain, label; a pod made before the agent restarts; restart; uncordon.
            await Lab.CordonAsync(state, Moved, true, log);
            await Lab.DrainAsync(state, Moved, force: false, log);
            Assert.DoesNotContain(state.Pods, p => p.Node == Moved);
            await Lab.LabelNodeAsync(state, Moved, Label($"{ClusterMigration.NodeLabel}={ClusterMigration.NodeLabelValue}"), log);
            var between = Lab.AddPod(state, "between", Moved);
            var betweenConf = Path.GetFileName(between.ConfList);
            await RebootAgentAsync(state, Moved);
            await WaitAsync(() => Task.FromResult(Picked(state, Moved) == NetworkCombination.RoutedConflist),
                $"{Moved}'s runtime picks {Picked(state, Moved)}, not {NetworkCombination.RoutedConflist}");
            Assert.True(File.Exists(BridgeBackup(state, Moved)), $"{Moved}: no {NetworkCombination.BridgeConflist}.loom_bak");
            await Lab.CordonAsync(state, Moved, false, log);
            var webMoved = Assert.Single(state.Pods, p => p.Owner == "webpod" && p.Node == Moved);
            var newW1 = Lab.AddPod(state, "new-w1", Moved);
            Assert.True(NewPool.Contains(ExternalServer.PodIp(webMoved)), $"webpod back on {Moved} got {webMoved.Ip}\n{log}");
            Assert.True(NewPool.Contains(ExternalServer.PodIp(newW1)), $"new-w1 got {newW1.Ip}");
            Assert.True(OldPool.Contains(ExternalServer.PodIp(oldW2)), $"old-w2 changed network: {oldW2.Ip}");
            servers.AddRange([ServiceTests.Serve(oldCtr, stop.Token), ServiceTests.Serve(oldW2, stop.Token), ServiceTests.Serve(newW1, stop.Token),
                ServiceTests.Serve(between, stop.Token)]);

            var checks = new NetworkChecks("mixed cluster", output);
            (LabPod From, LabPod To)[] pairs = [(oldCtr, newW1), (newW1, oldCtr), (oldW2, newW1), (newW1, oldW2)];
            await checks.Check("10.244 pods <-> 10.245 pod across nodes, both ways (TCP, UDP)", async () =>
            {
                foreach (var (from, to) in pairs)
                {
                    await NetworkChecks.PodToPodAsync(from, to);
                }
            });

            await checks.Check("the webpod ClusterIP from a 10.244 pod reaches the 10.244 and the 10.245 replica", async () =>
            {
                var vip = await DrainTests.ClusterIpAsync(state, "default/webpod");
                using var ns = NetNs.Open(oldCtr.Netns);
                var seen = new HashSet<string>(StringComparer.Ordinal);
                for (var i = 0; i < 40 && seen.Count < 2; i++)
                {
                    seen.Add(await HttpHostnameAsync(ns, vip));
                }

                Assert.Contains(webMoved.Name, seen);
                Assert.Equal(2, seen.Count);
            });

            await checks.Check("large packets (ping -M do -s MTU-28) across both overlays, both ways", async () =>
            {
                foreach (var (from, to) in pairs)
                {
                    var mtu = Math.Min(await MtuAsync(from), await MtuAsync(to));
                    var size = (mtu - 28).ToString(CultureInfo.InvariantCulture);
                    output.WriteLine($"{from.Name} ({from.Ip}) -> {to.Name} ({to.Ip}): ping -M do -s {size} (MTU {mtu})");
                    var ping = await LabProcesses.CaptureAsync(from.Netns, ["ping", "-M", "do", "-s", size, "-c", "3", "-i", "0.2", "-W", "2", ExternalServer.PodIp(to).ToString()]);
                    Assert.True(ping.ExitCode == 0 && ping.Stdout.Contains(" 0% packet loss", StringComparison.Ordinal),
                        $"{from.Name} ({from.Ip}) -> {to.Name} ({to.Ip}), {size} bytes, DF: exit {ping.ExitCode}\n{ping.Stdout}{ping.Stderr}");
                }
            });

            await checks.Check("1 MB over TCP across both overlays, both ways", async () =>
            {
                foreach (var (from, to) in pairs)
                {
                    await BulkAsync(from, to, 1 << 20);
                }
            });

            await checks.Check("a pod made between label and agent restart got what the CNI file on disk said, and is reachable", async () =>
            {
                output.WriteLine($"between: wired with {betweenConf}, got {between.Ip}");
                var pool = betweenConf == NetworkCombination.RoutedConflist ? NewPool : OldPool;
                Assert.True(pool.Contains(ExternalServer.PodIp(between)), $"between was wired with {betweenConf} but got {between.Ip}");
                await NetworkChecks.PodToPodAsync(oldW2, between);
                await NetworkChecks.PodToPodAsync(between, oldW2);
                await NetworkChecks.PodToPodAsync(newW1, between);
            });

            await checks.Check("the old plugin rewriting its CNI file: a new pod still joins 10.245; after a reboot it is set aside again", async () =>
            {
                // What flannel does when its daemon starts again: its conflist back in place.
                var bridge = Path.Combine(state.CniConfDir(Moved), NetworkCombination.BridgeConflist);
                File.Copy(BridgeBackup(state, Moved), bridge, overwrite: true);
                var meanwhile = Lab.AddPod(state, "rewritten", Moved);
                Assert.True(NewPool.Contains(ExternalServer.PodIp(meanwhile)), $"a pod on {Moved} with {bridge} back got {meanwhile.Ip} ({meanwhile.ConfList})");
                await RebootAgentAsync(state, Moved);
                await WaitAsync(() => Task.FromResult(!File.Exists(bridge)), $"{bridge} still there after {Moved}'s agent restarted");
                Assert.True(File.Exists(BridgeBackup(state, Moved)), $"{bridge} was not set aside as .loom_bak");
                var after = Lab.AddPod(state, "after-reboot", Moved);
                Assert.True(NewPool.Contains(ExternalServer.PodIp(after)), $"a pod on {Moved} after the reboot got {after.Ip}");
                servers.Add(ServiceTests.Serve(after, stop.Token));
                await NetworkChecks.PodToPodAsync(oldCtr, after);
            });

            checks.AssertAllPassed();
        }
        finally
        {
            await stop.CancelAsync();
            servers.ForEach(s => s.Dispose());
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }
    }

    private static LabelChanges Label(string change)
    {
        var errors = new List<FieldError>();
        return LabelChanges.Parse([change], errors) ?? throw new InvalidOperationException(string.Join("; ", errors));
    }

    private static string? Picked(LabState state, string node) => Path.GetFileName(LabCniConfig.Find(state.CniConfDir(node)));

    private static string BridgeBackup(LabState state, string node) => Path.Combine(state.CniConfDir(node), NetworkCombination.BridgeConflist + ".loom_bak");

    /// <summary>The agent killed and started again, as after a reboot; returns once it logged ready once more.</summary>
    private static async Task RebootAgentAsync(LabState state, string node)
    {
        var logFile = Path.Combine(state.NodeDir(node), "agent.log");
        var readyBefore = File.ReadAllText(logFile).Split("ready:").Length;
        var pid = state.Node(node).AgentPid!.Value;
        LabProcesses.Kill(pid);
        await WaitAsync(() => Task.FromResult(!LabProcesses.IsAlive(pid)), $"the agent of {node} (pid {pid}) survived SIGKILL");
        Lab.RestartAgent(state, node);
        await WaitAsync(() => Task.FromResult(File.ReadAllText(logFile).Split("ready:").Length > readyBefore), $"the agent of {node} did not come back:\n{Lab.LogTail(logFile)}");
    }

    private static async Task<int> MtuAsync(LabPod pod)
    {
        var link = await TestLab.Capture(pod.Netns, "ip", "-o", "link", "show", "eth0");
        var words = link.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return int.Parse(words[Array.IndexOf(words, "mtu") + 1], CultureInfo.InvariantCulture);
    }

    /// <summary>One HTTP GET to whoami; the hostname that answered.</summary>
    private static Task<string> HttpHostnameAsync(NetNsHandle ns, IPEndPoint target) =>
        ProbeRequests.HttpGetAsync(() => NetNs.Run(ns, ProbeRequests.Tcp), target, TimeSpan.FromSeconds(5), CancellationToken.None);

    /// <summary><paramref name="bytes"/> of random data from one pod to another over TCP; the receiver's SHA-256 must match.</summary>
    private static async Task BulkAsync(LabPod from, LabPod to, int bytes)
    {
        var payload = RandomNumberGenerator.GetBytes(bytes);
        var ip = ExternalServer.PodIp(to);
        using var serverNs = NetNs.Open(to.Netns);
        using var clientNs = NetNs.Open(from.Netns);
        using var listener = NetNs.Run(serverNs, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        listener.Bind(new IPEndPoint(ip, 0));
        listener.Listen();
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var received = Task.Run(async () =>
        {
            using var conn = await listener.AcceptAsync(cts.Token);
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buf = new byte[65536];
            long total = 0;
            int n;
            while ((n = await conn.ReceiveAsync(buf, cts.Token)) > 0)
            {
                sha.AppendData(buf, 0, n);
                total += n;
            }

            return (total, Convert.ToHexString(sha.GetHashAndReset()));
        });
        using (var client = NetNs.Run(clientNs, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)))
        {
            await client.ConnectAsync(new IPEndPoint(ip, port), cts.Token);
            var sent = 0;
            while (sent < payload.Length)
            {
                sent += await client.SendAsync(payload.AsMemory(sent), cts.Token);
            }

            client.Shutdown(SocketShutdown.Send);
            var (total, hash) = await received;
            Assert.True(total == bytes && hash == Convert.ToHexString(SHA256.HashData(payload)),
                $"{from.Name} ({from.Ip}) -> {to.Name} ({to.Ip}): {total} of {bytes} bytes arrived{(total == bytes ? ", corrupted" : "")}");
        }
    }

    private static async Task WaitAsync(Func<Task<bool>> done, string failure)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!await done())
        {
            Assert.True(DateTime.UtcNow < deadline, $"{failure} (after {Patience.TotalSeconds} s)");
            await Task.Delay(200);
        }
    }
}
