using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Loom.Core.Model;
using Loom.Linux;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Loom.Lab.Tests.Services;

/// <summary>
/// NodePort, externalTrafficPolicy, hairpin, ClientIP affinity timeout and UDP conntrack cleanup (issue 16) with real
/// packets from the lab's underlay client (192.168.10.1, in the lab's underlay namespace), on each service backend in
/// turn in one lab (<see cref="NodePortLab"/>); each backend's checks all run and the test names every one that failed.
/// </summary>
[Collection(SequentialLab.Name)]
[TestCaseOrderer(BackendOrder.Name, BackendOrder.Assembly)]
public sealed class NodePortTests(NodePortLab lab, ITestOutputHelper output) : IClassFixture<NodePortLab>
{
    private static readonly IPAddress UnderlayClient = IPAddress.Parse(Lab.UnderlayRouter);

    [Theory]
    [InlineData(ServiceProxyMode.Iptables)]
    [InlineData(ServiceProxyMode.Nftables)]
    [InlineData(ServiceProxyMode.Ebpf)]
    public async Task Each_backend_serves_node_ports_traffic_policies_hairpin_affinity_timeout_and_moves_udp_at_once(ServiceProxyMode backend)
    {
        var clock = Stopwatch.StartNew();
        output.WriteLine($"lab up and apply took {lab.BringUp.TotalSeconds:F1} s");
        await lab.UseBackendAsync(backend);
        output.WriteLine($"{backend}: every agent switched in {clock.Elapsed.TotalSeconds:F1} s");
        var state = lab.State;
        var checks = new NetworkChecks(backend.ToString(), output);
        using var underlay = NetNs.Open(state.UnderlayNetns);
        if (backend != ServiceProxyMode.Ebpf)
        {
            await checks.Check($"no eBPF service program on {Lab.NodeInterface} with {backend}", () => NoUnderlayProgramsAsync(state));
        }


        // Every answer through np-web's node port: which node received it, the replica and the client it saw.
        var answers = new List<(LabNode Node, WhoamiAnswer Answer, HashSet<string> NodeAddresses)>();
        await checks.Check("node port from the underlay on every node reaches both replicas", async () =>
        {
            var port = await lab.NodePortAsync("np-web");
            var replicas = lab.WebPods().Select(p => p.Name).Order(StringComparer.Ordinal).ToList();
            foreach (var node in state.Nodes)
            {
                var target = new IPEndPoint(IPAddress.Parse(node.Ip), port);
                var own = await NodeAddressesAsync(node.Netns);
                var seen = new HashSet<string>(StringComparer.Ordinal);
                for (var i = 0; i < 30 && (i < 6 || seen.Count < replicas.Count); i++)
                {
                    var a = await Named($"via {node.Name} {target}, request {i + 1}", () => NetworkChecks.Within(TimeSpan.FromSeconds(i == 0 ? 15 : 3), () => WhoamiAnswer.GetAsync(underlay, target)));
                    seen.Add(a.Hostname);
                    answers.Add((node, a, own));
                }

                Assert.True(seen.Order(StringComparer.Ordinal).SequenceEqual(replicas), $"via {node.Name} {target} answered {string.Join(", ", seen)}; the replicas are {string.Join(", ", replicas)}");
            }
        });

        // externalTrafficPolicy Cluster: kube-proxy masquerades external traffic to the node (KUBE-EXT -> KUBE-MARK-MASQ),
        // for a local backend too; Cilium's eBPF node port (and Loom's) only SNATs what it sends to another node, so a
        // backend on the receiving node sees the client itself. Told apart so a run says which case is not.
        foreach (var local in new[] { false, true })
        {
            var keepsClient = local && backend == ServiceProxyMode.Ebpf;
            await checks.Check($"Cluster: the backend {(local ? "on the receiving node" : "on another node")} sees {(keepsClient ? "the client" : "a node address")}", () =>
            {
                var cases = answers.Where(x => lab.WebPods().Any(p => p.Name == x.Answer.Hostname && p.Node == x.Node.Name) == local).ToList();
                Assert.True(cases.Count > 0, "no such answer (the node port check above failed)");
                var wrong = cases.Where(x => keepsClient ? x.Answer.RemoteIp != Lab.UnderlayRouter : !x.NodeAddresses.Contains(x.Answer.RemoteIp))
                    .Select(x => $"{x.Answer.Hostname} via {x.Node.Name} saw {x.Answer.RemoteIp}").Distinct().ToList();
                Assert.True(wrong.Count == 0, $"{(keepsClient ? "the client address was not kept" : "not masqueraded to the node")}: {string.Join("; ", wrong)}");
                return Task.CompletedTask;
            });
        }

        await checks.Check("externalTrafficPolicy Local: a node with a replica answers with it and keeps the client address; k8s-ctr drops", async () =>
        {
            var port = await lab.NodePortAsync("np-local");
            foreach (var pod in lab.WebPods())
            {
                var target = new IPEndPoint(IPAddress.Parse(state.Node(pod.Node).Ip), port);
                for (var i = 0; i < 4; i++)
                {
                    var a = await Named($"via {pod.Node} {target}, request {i + 1}", () => NetworkChecks.Within(TimeSpan.FromSeconds(i == 0 ? 15 : 3), () => WhoamiAnswer.GetAsync(underlay, target)));
                    Assert.True(a.Hostname == pod.Name && a.RemoteIp == Lab.UnderlayRouter,
                        $"via {pod.Node} {target}: {a.Hostname} answered, seeing client {a.RemoteIp}; Local wants {pod.Name} (on {pod.Node}) seeing {Lab.UnderlayRouter}");
                }
            }

            var ctr = new IPEndPoint(IPAddress.Parse(state.Node("k8s-ctr").Ip), port);
            var outcome = await ConnectOutcomeAsync(underlay, ctr);
            Assert.True(outcome == "timeout", $"k8s-ctr (no local replica) {ctr}: {outcome}; Local without a local endpoint drops (a connect timeout)");
        });

        await checks.Check("health-check node port: 503 on k8s-ctr, 200 with the local endpoint count on the workers", async () =>
        {
            var svc = await lab.ServiceAsync("np-local");
            var hc = svc.HealthCheckNodePort;
            Assert.True(hc is >= 30000 and <= 32767, $"np-local has healthCheckNodePort {hc}");
            foreach (var node in state.Nodes)
            {
                var local = lab.WebPods().Count(p => p.Node == node.Name);
                var target = new IPEndPoint(IPAddress.Parse(node.Ip), hc);
                var a = await NetworkChecks.Within(TimeSpan.FromSeconds(10), async () =>
                {
                    var got = await WhoamiAnswer.GetAsync(underlay, target);
                    Assert.True(got.Status == (local > 0 ? 200 : 503), $"{node.Name} {target} answered {got.Status} with {local} local endpoint(s): {got.Body}");
                    return got;
                });
                Assert.Matches($"\"localEndpoints\":\\s*{local}\\b", a.Body);
                Assert.Contains("np-local", a.Body, StringComparison.Ordinal);
            }
        });

        await checks.Check("hairpin: a pod curls its own Service and gets itself", async () =>
        {
            var ip = (await lab.ServiceAsync("np-hairpin")).ClusterIp;
            var body = await NetworkChecks.Within(TimeSpan.FromSeconds(10), async () =>
            {
                var (code, stdout, stderr) = await Lab.PodCaptureAsync(state, "np-hairpin", ["curl", "-s", "-m", "3", $"http://{ip}/"]);
                Assert.True(code == 0, $"curl http://{ip}/ in np-hairpin: exit {code} {stderr}");
                return stdout;
            });
            Assert.Contains("Hostname: np-hairpin", body, StringComparison.Ordinal);
        });

        await checks.Check("ClientIP affinity with timeoutSeconds 2: sticks while asked, another replica after a quiet spell", () => AffinityTimeoutAsync(state));

        // Last: it deletes a replica (the Deployment replaces it for the next backend).
        await checks.Check("UDP: a stream through a node port moves to a live replica within 1 s of its replica's deletion", () => UdpMovesAsync(state, underlay, backend));
        await Lab.ReconcileAsync(state, TextWriter.Null);
        Assert.Equal(2, lab.WebPods().Count);
        if (backend == ServiceProxyMode.Ebpf)
        {
            // eBPF runs last (BackendOrder): switched back, its node-port programs must leave the underlay device.
            await checks.Check($"switched back to iptables, no eBPF service program is left on {Lab.NodeInterface}", async () =>
            {
                await lab.UseBackendAsync(ServiceProxyMode.Iptables);
                await NetworkChecks.Within(TimeSpan.FromSeconds(5), async () =>
                {
                    await NoUnderlayProgramsAsync(state);
                    return true;
                });
            });
        }

        output.WriteLine($"{backend}: {clock.Elapsed.TotalSeconds:F1} s");
        checks.AssertAllPassed();
    }

    [Fact]
    public async Task Get_svc_shows_node_ports_as_kubectl_does_and_ClusterIP_Services_unchanged()
    {
        var text = await LabGet.GetAsync(lab.State, "svc", "", "default");
        output.WriteLine(text);
        foreach (var (name, type, ports) in new[]
                 {
                     ("np-web", "NodePort", $"80:{await lab.NodePortAsync("np-web")}/TCP"),
                     ("np-local", "LoadBalancer", $"80:{await lab.NodePortAsync("np-local")}/TCP"),
                     ("np-udp", "NodePort", $"53:{await lab.NodePortAsync("np-udp")}/UDP"),
                     ("np-sticky", "ClusterIP", "80/TCP"),
                     ("np-hairpin", "ClusterIP", "80/TCP"),
                 })
        {
            var ip = (await lab.ServiceAsync(name)).ClusterIp;
            Assert.Matches(new Regex($@"(?m)^{name}\s+{type}\s+{Regex.Escape(ip.ToString())}\s+\S+\s+{Regex.Escape(ports)}\s"), text);
        }
    }

    [Fact]
    public async Task A_node_port_out_of_range_or_taken_is_refused_naming_it_and_nothing_is_stored()
    {
        var taken = await lab.NodePortAsync("np-web");
        var outOfRange = await Assert.ThrowsAsync<LabException>(() => Lab.ApplyAsync(lab.State, NodePortService("np-bad", 80), TextWriter.Null));
        output.WriteLine(outOfRange.Message);
        Assert.Contains("spec.ports[0].nodePort", outOfRange.Message, StringComparison.Ordinal);
        Assert.Contains("80", outOfRange.Message, StringComparison.Ordinal);

        // A taken port in the second document: the first (valid) one is not applied either.
        var yaml = """
            apiVersion: v1
            kind: Service
            metadata:
              name: np-ok
            spec:
              selector:
                app: np-web
              ports:
              - port: 80
            ---

            """ + NodePortService("np-taken", taken);
        var inUse = await Assert.ThrowsAsync<LabException>(() => Lab.ApplyAsync(lab.State, yaml, TextWriter.Null));
        output.WriteLine(inUse.Message);
        Assert.Contains("np-taken", inUse.Message, StringComparison.Ordinal);
        Assert.Contains("spec.ports[0].nodePort", inUse.Message, StringComparison.Ordinal);
        Assert.Contains(taken.ToString(System.Globalization.CultureInfo.InvariantCulture), inUse.Message, StringComparison.Ordinal);

        foreach (var name in new[] { "np-bad", "np-ok", "np-taken" })
        {
            await Assert.ThrowsAsync<XunitException>(() => lab.ServiceAsync(name));
        }

        Assert.Equal(taken, await lab.NodePortAsync("np-web"));
    }

    private static string NodePortService(string name, int nodePort) => $"""
        apiVersion: v1
        kind: Service
        metadata:
          name: {name}
        spec:
          type: NodePort
          selector:
            app: np-web
          ports:
          - port: 80
            nodePort: {nodePort}

        """;

    /// <summary>
    /// From np-client: six requests in a row go to one replica; then, up to 10 times, 3 s of quiet (past the 2 s timeout)
    /// and three requests (which agree again) until another replica answers. With the affinity never expiring (the
    /// default 10800 s) every round gives the first one and the check fails.
    /// </summary>
    private async Task AffinityTimeoutAsync(LabState state)
    {
        var vip = new IPEndPoint((await lab.ServiceAsync("np-sticky")).ClusterIp, 80);
        using var client = NetNs.Open(state.Pod("np-client")!.Netns);
        async Task<string> RoundAsync(int requests)
        {
            var names = new List<string>();
            for (var i = 0; i < requests; i++)
            {
                names.Add((await NetworkChecks.Within(TimeSpan.FromSeconds(10), () => WhoamiAnswer.GetAsync(client, vip))).Hostname);
            }

            Assert.True(names.Distinct().Count() == 1, $"ClientIP affinity through {vip}: one client in a row got {string.Join(", ", names)}");
            return names[0];
        }

        var first = await RoundAsync(6);
        for (var round = 1; round <= 10; round++)
        {
            await Task.Delay(TimeSpan.FromSeconds(3));
            var now = await RoundAsync(3);
            if (now != first)
            {
                output.WriteLine($"affinity: {first} for the first round, {now} after {round} quiet spell(s) of 3 s");
                return;
            }
        }

        Assert.Fail($"ClientIP affinity through {vip}: {first} answered after each of 10 quiet spells of 3 s (timeoutSeconds 2)");
    }

    /// <summary>
    /// A datagram every 50 ms from a fixed source port on the underlay client to k8s-ctr's node port for np-udp (every
    /// replica is remote from there); once it is answered steadily, the answering replica's pod is deleted, and the time
    /// until another replica answers is measured as the gap from its last answer to the first of another (and from the delete's return; both under 1 s).
    /// </summary>
    private async Task UdpMovesAsync(LabState state, NetNsHandle underlay, ServiceProxyMode backend)
    {
        var target = new IPEndPoint(IPAddress.Parse(state.Node("k8s-ctr").Ip), await lab.NodePortAsync("np-udp"));
        using var s = NetNs.Run(underlay, () => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        // One source port per backend: each run's flow is new to the node's conntrack (and to the eBPF CT map).
        s.Bind(new IPEndPoint(UnderlayClient, 41000 + (int)backend));
        await s.ConnectAsync(target);
        var clock = Stopwatch.StartNew();
        var answers = new ConcurrentQueue<(TimeSpan At, string Name)>();
        using var stop = new CancellationTokenSource();
        var sender = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await s.SendAsync(Encoding.ASCII.GetBytes("who"));
                }
                catch (SocketException)
                {
                    // an ICMP error from an earlier datagram: keep streaming
                }

                await Task.Delay(50, CancellationToken.None);
            }
        });
        var receiver = Task.Run(async () =>
        {
            var buf = new byte[256];
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var n = await s.ReceiveAsync(buf, stop.Token);
                    answers.Enqueue((clock.Elapsed, Encoding.ASCII.GetString(buf, 0, n).Trim()));
                }
                catch (SocketException)
                {
                    // as above
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        });
        try
        {
            var steady = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            while (answers.Count < 10)
            {
                Assert.True(DateTime.UtcNow < steady, $"UDP to {target} from {UnderlayClient}:{41000 + (int)backend}: {answers.Count} answer(s) in 15 s");
                await Task.Delay(50);
            }

            var last = answers.TakeLast(5).Select(a => a.Name).ToList();
            Assert.True(last.Distinct().Count() == 1, $"UDP from one source port to {target} is not sticky: {string.Join(", ", last)}");
            var gone = last[0];
            var began = clock.Elapsed;
            Assert.True(await Lab.DeleteObjectAsync(state, "pod", "default", gone, TextWriter.Null), $"no pod {gone} to delete");
            var deleted = clock.Elapsed;
            var moved = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            (TimeSpan At, string Name) next;
            while (!TryOther(answers, began, gone, out next))
            {
                Assert.True(DateTime.UtcNow < moved, $"UDP to {target}: no replica but {gone} answered in 10 s after {gone} was deleted");
                await Task.Delay(10);
            }

            // The gap the client saw: from the deleted replica's last answer to the first of another (the delete
            // stops the workload before it removes the endpoint, so the stream may move before the delete returns).
            var lastOld = answers.Where(a => a.Name == gone && a.At < next.At).Select(a => a.At).DefaultIfEmpty(began).Max();
            var gap = next.At - lastOld;
            var after = next.At - deleted;
            output.WriteLine($"{backend}: UDP moved from {gone} to {next.Name} after a gap of {gap.TotalMilliseconds:F0} ms without answers; "
                + $"{(next.At - began).TotalMilliseconds:F0} ms after the delete began, {after.TotalMilliseconds:F0} ms after it returned (it took {(deleted - began).TotalMilliseconds:F0} ms)");
            Assert.True(gap < TimeSpan.FromSeconds(1), $"UDP to {target}: {gap.TotalMilliseconds:F0} ms without an answer between {gone}'s last and {next.Name}'s first");
            Assert.True(after < TimeSpan.FromSeconds(1), $"UDP to {target} moved from {gone} to {next.Name} only {after.TotalMilliseconds:F0} ms after {gone}'s delete returned");
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(sender, receiver);
        }
    }

    private static async Task NoUnderlayProgramsAsync(LabState state)
    {
        foreach (var node in state.Nodes)
        {
            // The service programs are lb4_*; the policy programs (pol_from_node, pol_to_node) belong there on every backend.
            var tc = await TestLab.Capture(node.Netns, "sh", "-c", $"tc filter show dev {Lab.NodeInterface} ingress; tc filter show dev {Lab.NodeInterface} egress");
            var lb = tc.Split('\n').Where(l => l.Contains("name lb4", StringComparison.Ordinal)).ToList();
            Assert.True(lb.Count == 0, $"{node.Name} {Lab.NodeInterface} still has: {string.Join("\n", lb)}");
        }
    }

    /// <summary>A socket error or timeout of <paramref name="attempt"/> as a failure that says where it happened.</summary>
    private static async Task<T> Named<T>(string where, Func<Task<T>> attempt)
    {
        try
        {
            return await attempt();
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            throw new XunitException($"{where}: {(e is OperationCanceledException ? "no answer (connect or response timed out)" : e.Message)}");
        }
    }

    private static bool TryOther(ConcurrentQueue<(TimeSpan At, string Name)> answers, TimeSpan since, string gone, out (TimeSpan At, string Name) found)
    {
        found = answers.FirstOrDefault(a => a.At > since && a.Name != gone);
        return found.Name is not null;
    }

    /// <summary>"answered", "refused" or "timeout" for one connection attempt (2 s).</summary>
    private static async Task<string> ConnectOutcomeAsync(NetNsHandle ns, IPEndPoint target)
    {
        try
        {
            var a = await WhoamiAnswer.GetAsync(ns, target, TimeSpan.FromSeconds(2));
            return $"answered by {a.Hostname}";
        }
        catch (OperationCanceledException)
        {
            return "timeout";
        }
        catch (SocketException e)
        {
            return e.SocketErrorCode == SocketError.ConnectionRefused ? "refused" : e.Message;
        }
    }

    /// <summary>A node's IPv4 addresses (eth1's, cni0's, the tunnel's): what a masqueraded client can look like.</summary>
    private static async Task<HashSet<string>> NodeAddressesAsync(string netns)
    {
        var text = await TestLab.Capture(netns, "ip", "-o", "-4", "addr", "show");
        return [.. text.Split('\n').Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(f => Array.IndexOf(f, "inet") is var i and >= 0 && i + 1 < f.Length ? f[i + 1].Split('/')[0] : null)
            .OfType<string>()];
    }
}
