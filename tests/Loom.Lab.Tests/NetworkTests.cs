using System.Net;
using System.Net.Sockets;
using Loom.Linux;
using Xunit.Abstractions;

namespace Loom.Lab.Tests;

/// <summary>
/// Issue 12's combinations with real agents, one lab each serving every check: the network's CNI config and
/// addresses, same-node and cross-node pod-to-pod TCP and UDP, a ClusterIP on the combination's service backend,
/// the cluster DNS, the "external" server's view of the source address, who forwards pod-to-pod traffic (the host's
/// netfilter or eBPF host routing), and agents SIGKILLed and restarted under a continuous probe.
/// </summary>
[Collection(SequentialLab.Name)]
public sealed class NetworkTests(ITestOutputHelper output)
{
    private static readonly string[] Workers = ["k8s-w1", "k8s-w2"];

    private static readonly IPAddress Vip = IPAddress.Parse("10.96.0.60");

    private const string ServiceYaml = """
        apiVersion: v1
        kind: Service
        metadata:
          name: netweb
        spec:
          clusterIP: 10.96.0.60
          selector:
            app: netweb
          ports:
          - name: http
            port: 80
            targetPort: 8080
          - name: dns
            protocol: UDP
            port: 53
            targetPort: 5353
        """;

    [Theory]
    [MemberData(nameof(NetworkCombination.All), MemberType = typeof(NetworkCombination))]
    public async Task Each_combination_carries_pod_service_dns_and_external_traffic_and_loses_nothing_to_an_agent_restart(string combination)
    {
        var c = NetworkCombination.For(combination);
        var o = TestLab.Options(agents: true) with { Cluster = c.File, ServiceBackend = c.File.Cluster.ServiceBackend, ClusterDns = true };
        var checks = new NetworkChecks(combination, output);
        using var stop = new CancellationTokenSource();
        var servers = new List<IDisposable>();
        try
        {
            var state = await Lab.UpAsync(o, TextWriter.Null);
            var web = new Dictionary<string, string> { ["app"] = "netweb" };
            var c1 = Lab.AddPod(state, "c1", "k8s-w1");
            var c2 = Lab.AddPod(state, "c2", "k8s-w1", labels: web);
            var c3 = Lab.AddPod(state, "c3", "k8s-w2", labels: web);
            servers.AddRange([ServiceTests.Serve(c1, stop.Token), ServiceTests.Serve(c2, stop.Token), ServiceTests.Serve(c3, stop.Token)]);
            using var c1Ns = NetNs.Open(c1.Netns);

            await checks.Check("the runtime's CNI config is the network's", () =>
            {
                foreach (var n in state.Nodes)
                {
                    var picked = LabCniConfig.Find(state.CniConfDir(n.Name));
                    Assert.True(Path.GetFileName(picked) == c.Conflist, $"{n.Name}'s runtime picks {picked ?? "nothing"}; a {c.Network.Plumbing} network writes {c.Conflist}");
                }

                Assert.All(new[] { c1, c2, c3 }, p => Assert.Equal(c.Conflist, Path.GetFileName(p.ConfList)));
                return Task.CompletedTask;
            });

            await checks.Check("pod addresses", async () =>
            {
                foreach (var p in new[] { c1, c2, c3 })
                {
                    Assert.True(c.Network.PodCidr.Contains(ExternalServer.PodIp(p)), $"{p.Name} got {p.Ip}, outside {c.Network.Name}'s pool {c.Network.PodCidr}");
                    var prefix = c.Routed ? 32 : c.Network.NodeMaskSize;
                    Assert.True(p.Ip!.EndsWith("/" + prefix, StringComparison.Ordinal), $"{p.Name} got {p.Ip}: {c.Network.Plumbing} plumbing gives a /{prefix}");
                }

                if (c.Routed)
                {
                    var w1 = state.Node("k8s-w1").Netns;
                    Assert.True(await NetworkChecks.LinkExistsAsync(w1, "loom_host"), "k8s-w1 has no loom_host (routed plumbing holds the router IP there)");
                    Assert.False(await NetworkChecks.LinkExistsAsync(w1, "cni0"), $"k8s-w1 has a cni0 bridge though {c.Network.Name} is routed");
                }
            });

            await checks.Check(c.Network.Tunnel is { } t ? $"routing: {t.Device}, VXLAN VNI {t.Vni} on port {t.Port}" : "routing: direct routes to the peer's block", async () =>
            {
                var w1 = state.Node("k8s-w1").Netns;
                var route = await TestLab.Capture(w1, "ip", "route", "get", ExternalServer.PodIp(c3).ToString());
                if (c.Network.Tunnel is { } tunnel)
                {
                    Assert.True(route.Contains($" dev {tunnel.Device} ", StringComparison.Ordinal), $"k8s-w1 routes c3 ({c3.Ip}) not through {tunnel.Device}: {route}");
                    var link = await TestLab.Capture(w1, "ip", "-d", "link", "show", tunnel.Device);
                    Assert.True(link.Contains($"vxlan id {tunnel.Vni} ", StringComparison.Ordinal) && link.Contains($"dstport {tunnel.Port} ", StringComparison.Ordinal),
                        $"{tunnel.Device} on k8s-w1 is not VNI {tunnel.Vni} on port {tunnel.Port}:\n{link}");
                }
                else
                {
                    var via = $"via {state.Node("k8s-w2").Ip} dev {Lab.NodeInterface}";
                    Assert.True(route.Contains(via, StringComparison.Ordinal), $"k8s-w1 routes c3 ({c3.Ip}) not {via} (autoDirectNodeRoutes): {route}");
                }
            });

            await checks.Check("same-node pod to pod, TCP and UDP", () => NetworkChecks.PodToPodAsync(c1, c2));
            await checks.Check("cross-node pod to pod and back, TCP and UDP", async () =>
            {
                await NetworkChecks.PodToPodAsync(c1, c3);
                await NetworkChecks.PodToPodAsync(c3, c1);
            });

            await checks.Check($"ClusterIP on {c.File.Cluster.ServiceBackend}", async () =>
            {
                await Lab.ApplyAsync(state, ServiceYaml, TextWriter.Null);
                var seen = new HashSet<string>(StringComparer.Ordinal);
                await NetworkChecks.Within(TimeSpan.FromSeconds(15), async () =>
                {
                    for (var i = 0; i < 20 && seen.Count < 2; i++)
                    {
                        seen.Add(await ServiceTests.TcpAsync(c1Ns, new IPEndPoint(Vip, 80)));
                    }

                    Assert.True(seen.SetEquals(["c2", "c3"]), $"through {Vip}:80 only {string.Join(", ", seen)} answered");
                    return seen;
                });
                using var udp = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                Assert.StartsWith("c", await ServiceTests.UdpAsync(c1Ns, new IPEndPoint(Vip, 53), "q").WaitAsync(udp.Token), StringComparison.Ordinal);
            });

            await checks.Check("cluster DNS", async () =>
            {
                var answer = await NetworkChecks.Within(TimeSpan.FromSeconds(10), async () =>
                {
                    var (code, stdout, stderr) = await Lab.PodCaptureAsync(state, "c1", ["nslookup", "-timeout=2", "netweb.default.svc.cluster.local"]);
                    Assert.True(code == 0, $"nslookup in c1: exit {code}\n{stdout}\n{stderr}");
                    return stdout;
                });
                Assert.Contains("Server:\t\t10.96.0.10", answer, StringComparison.Ordinal);
                Assert.Contains($"Address: {Vip}", answer, StringComparison.Ordinal);
            });

            await checks.Check(c.MasqueradesToUnderlay ? "external server sees the node's address" : "external server sees the pod's own address", async () =>
            {
                await using var external = ExternalServer.Start(state);
                if (!c.MasqueradesToUnderlay)
                {
                    external.RouteBackTo(state, c1);
                }

                var expected = c.MasqueradesToUnderlay ? state.Node(c1.Node).Ip : ExternalServer.PodIp(c1).ToString();
                var why = c.MasqueradesToUnderlay ? $"{c.Network.Masquerade} masquerade" : $"{Lab.UnderlayRouter} is inside nativeRoutingCIDR {c.Network.NativeRoutingCidr}";
                using var tcp = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                Assert.True(await external.AskTcpAsync(c1Ns).WaitAsync(tcp.Token) is var t && t == expected, $"TCP from c1 ({c1.Ip}) arrived from {t}, expected {expected} ({why})");
                Assert.True(await external.AskUdpAsync(c1Ns) is var u && u == expected, $"UDP from c1 ({c1.Ip}) arrived from {u}, expected {expected} ({why})");
            });

            await checks.Check(c.Network.Masquerade == Core.Model.Masquerade.Bpf ? "BPF masquerade: no netfilter rule masquerades the pool" : "iptables masquerade: a rule masquerades the pool", async () =>
            {
                var pool = "-s " + c.Network.PodCidr;
                var rules = (await TestLab.Capture(state.Node("k8s-w1").Netns, "sh", "-c", "iptables-save -t nat; nft list ruleset 2>/dev/null")).Split('\n')
                    .Where(l => (l.Contains(pool, StringComparison.Ordinal) || l.Contains("saddr " + c.Network.PodCidr, StringComparison.Ordinal))
                                && (l.Contains("MASQUERADE", StringComparison.OrdinalIgnoreCase) || l.Contains("SNAT", StringComparison.OrdinalIgnoreCase)))
                    .ToList();
                if (c.Network.Masquerade == Core.Model.Masquerade.Bpf)
                {
                    Assert.True(rules.Count == 0, $"k8s-w1 masquerades {c.Network.PodCidr} in netfilter though the network masquerades in BPF:\n{string.Join("\n", rules)}");
                }
                else
                {
                    Assert.True(rules.Count > 0, $"no iptables rule on k8s-w1 masquerades {c.Network.PodCidr}");
                }
            });

            await checks.Check(c.Network.HostRouting == Core.Model.HostRouting.Bpf ? "eBPF host routing: netfilter FORWARD never sees pod-to-pod" : "legacy host routing: netfilter FORWARD counts pod-to-pod", async () =>
            {
                foreach (var n in Workers)
                {
                    await NetworkChecks.CountForwardAsync(state.Node(n).Netns, c1, c3);
                }

                for (var i = 0; i < 5; i++)
                {
                    Assert.Equal("c3", await ServiceTests.TcpAsync(c1Ns, new IPEndPoint(ExternalServer.PodIp(c3), 8080)));
                }

                foreach (var n in Workers)
                {
                    var forwarded = await NetworkChecks.ForwardedAsync(state.Node(n).Netns);
                    if (c.Network.HostRouting == Core.Model.HostRouting.Bpf)
                    {
                        Assert.True(forwarded == 0, $"{n}'s FORWARD chain counted {forwarded} packets between c1 and c3: the host stack forwarded them, not the tc programs");
                    }
                    else
                    {
                        Assert.True(forwarded > 0, $"{n}'s FORWARD chain counted no packet between c1 and c3 though the host stack routes them");
                    }
                }
            });

            await checks.Check("agents SIGKILLed and restarted under a continuous probe lose no request", () => RestartUnderProbeAsync(state, c1, c3));
            checks.AssertAllPassed();
        }
        finally
        {
            await stop.CancelAsync();
            servers.ForEach(s => s.Dispose());
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }
    }

    /// <summary>
    /// A new connection every 20 ms from <paramref name="client"/> to <paramref name="server"/> while both pods' agents are
    /// killed and restarted; the echo server stops only after the probe.
    /// </summary>
    internal static async Task RestartUnderProbeAsync(LabState state, LabPod client, LabPod server)
    {
        var serverIp = ExternalServer.PodIp(server);
        using var serverNs = NetNs.Open(server.Netns);
        using var clientNs = NetNs.Open(client.Netns);
        using var listener = NetNs.Run(serverNs, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        listener.Bind(new IPEndPoint(serverIp, 9000));
        listener.Listen(128);
        using var stop = new CancellationTokenSource();
        var echo = TestLab.EchoAsync(listener, stop.Token);
        var (ok, failed, errors) = await TestLab.ProbeAcrossAgentRestartAsync(state, clientNs, new IPEndPoint(serverIp, 9000), [client.Node, server.Node]);
        await stop.CancelAsync();
        await echo;
        Assert.True(failed == 0, $"{failed} of {ok + failed} probes {client.Name} -> {server.Name} failed: {string.Join("; ", errors.Take(5))}");
        Assert.True(ok >= 100, $"only {ok} probes ran");
    }
}
