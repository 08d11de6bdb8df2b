using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Linux;
using Loom.Store.Sqlite;

namespace Loom.Lab.Tests;

/// <summary>
/// Services in the lab with real agents, for each rule backend: every backend of a ClusterIP is reached, UDP works,
/// a removed endpoint leaves the rotation within a second, ClientIP affinity holds, a service without endpoints is
/// refused at once, and switching a node's backend leaves no rule of the other behind.
/// </summary>
[Collection(SequentialLab.Name)]
public sealed class ServiceTests
{
    private static readonly IPAddress Vip = IPAddress.Parse("10.96.0.50");
    private static readonly IPAddress EmptyVip = IPAddress.Parse("10.96.0.51");

    [Theory]
    [InlineData(ServiceProxyMode.Iptables)]
    [InlineData(ServiceProxyMode.Nftables)]
    [InlineData(ServiceProxyMode.Ebpf)]
    public async Task ClusterIp_balances_tcp_and_udp_follows_endpoints_and_honours_affinity(ServiceProxyMode backend)
    {
        var o = TestLab.Options(agents: true) with { ServiceBackend = backend };
        using var stop = new CancellationTokenSource();
        try
        {
            var state = await Lab.UpAsync(o, TextWriter.Null);
            var client = Lab.AddPod(state, "client", "k8s-ctr");
            var web1 = Lab.AddPod(state, "web1", "k8s-w1");
            var web2 = Lab.AddPod(state, "web2", "k8s-w2");
            var servers = new List<IDisposable>();
            foreach (var w in new[] { web1, web2 })
            {
                servers.Add(Serve(w, stop.Token));
            }

            var store = await SqliteStore.OpenAsync(state.StorePath!);
            await using (store)
            {
                await LabelAsync(store, "web1", "web2");
                await store.PutAsync(Kinds.Service, Service("web", Vip, SessionAffinity.None));
                await store.PutAsync(Kinds.Service, Service("empty", EmptyVip, SessionAffinity.None) with { Selector = new Dictionary<string, string> { ["app"] = "nothing" } });

                using var clientNs = NetNs.Open(client.Netns);
                var seen = await EventuallyBothAsync(clientNs);
                Assert.Equal(["web1", "web2"], seen.Order());
                Assert.StartsWith("web", await UdpAsync(clientNs, new IPEndPoint(Vip, 53), "q"), StringComparison.Ordinal);

                var refused = Stopwatch.StartNew();
                var ex = await Assert.ThrowsAnyAsync<SocketException>(() => TcpAsync(clientNs, new IPEndPoint(EmptyVip, 80)));
                Assert.Equal(SocketError.ConnectionRefused, ex.SocketErrorCode);
                Assert.True(refused.Elapsed < TimeSpan.FromSeconds(1), $"refusal took {refused.Elapsed}");

                // web2's endpoint goes away: within a second only web1 answers.
                var removed = Stopwatch.StartNew();
                var key = (await store.ListAsync(Kinds.Endpoint)).Items.Single(e => e.Value.Name == "web2").Key;
                await store.DeleteAsync(Kinds.Endpoint, key);
                while (true)
                {
                    var answers = new HashSet<string>();
                    for (var i = 0; i < 12; i++)
                    {
                        answers.Add(await TcpAsync(clientNs, new IPEndPoint(Vip, 80), TimeSpan.FromSeconds(1)));
                    }

                    if (answers.SetEquals(["web1"]))
                    {
                        break;
                    }

                    Assert.True(removed.Elapsed < TimeSpan.FromSeconds(1.5), $"web2 still answers {removed.Elapsed} after its endpoint was removed");
                    await Task.Delay(50);
                }

                // Back with two endpoints and ClientIP affinity: one client sticks to one backend.
                Lab.DeletePod(state, "web2");
                web2 = Lab.AddPod(state, "web2", "k8s-w2");
                servers.Add(Serve(web2, stop.Token));
                await LabelAsync(store, "web2");
                await store.PutAsync(Kinds.Service, Service("web", Vip, SessionAffinity.ClientIP));
                await EventuallyBothAsync(clientNs, affinityExpected: true);

                // Switch k8s-ctr to the other backend: the old one's rules are gone, traffic still flows.
                var other = backend == ServiceProxyMode.Iptables ? ServiceProxyMode.Nftables : ServiceProxyMode.Iptables;
                await store.PutAsync(Kinds.NodeConfig, new NodeConfig { Node = "k8s-ctr", ServiceBackend = other });
                var ctr = state.Node("k8s-ctr").Netns;
                var pins = Path.Combine(Lab.BpfPinDir(state, "k8s-ctr"), "lb4");
                var dump = ServiceDumpCommand;
                await TestLab.Eventually(ctr, ["sh", "-c", dump], s => Leftovers(s, backend) == "" && !Directory.Exists(pins));
                Assert.Equal("", Leftovers(await TestLab.Capture(ctr, "sh", "-c", dump), backend));
                if (backend == ServiceProxyMode.Ebpf)
                {
                    Assert.False(Directory.Exists(pins), $"{pins} still pinned after switching to {other}");
                }
                Assert.StartsWith("web", await TcpAsync(clientNs, new IPEndPoint(Vip, 80)), StringComparison.Ordinal);
            }

            foreach (var s in servers)
            {
                s.Dispose();
            }
        }
        finally
        {
            await stop.CancelAsync();
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }
    }

    [Theory]
    [InlineData(ServiceProxyMode.Iptables)]
    [InlineData(ServiceProxyMode.Nftables)]
    [InlineData(ServiceProxyMode.Ebpf)]
    public async Task Agents_killed_under_a_probe_through_a_ClusterIP_lose_no_request(ServiceProxyMode backend)
    {
        var o = TestLab.Options(agents: true) with { ServiceBackend = backend };
        using var stop = new CancellationTokenSource();
        try
        {
            var state = await Lab.UpAsync(o, TextWriter.Null);
            var client = Lab.AddPod(state, "client", "k8s-ctr");
            var pods = new[] { Lab.AddPod(state, "web1", "k8s-w1"), Lab.AddPod(state, "web2", "k8s-w2") };
            var listeners = new List<Socket>();
            var echoes = new List<Task>();
            foreach (var pod in pods)
            {
                using var ns = NetNs.Open(pod.Netns);
                var l = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
                l.Bind(new IPEndPoint(IPAddress.Parse(pod.Ip!.Split('/')[0]), 8080));
                l.Listen(128);
                listeners.Add(l);
                echoes.Add(TestLab.EchoAsync(l, stop.Token));
            }

            var store = await SqliteStore.OpenAsync(state.StorePath!);
            await using (store)
            {
                await LabelAsync(store, "web1", "web2");
                await store.PutAsync(Kinds.Service, Service("web", Vip, SessionAffinity.None));
            }

            using var clientNs = NetNs.Open(client.Netns);
            var ready = Stopwatch.StartNew();
            while (!(await TestLab.ProbeOnceAsync(clientNs, new IPEndPoint(Vip, 80))))
            {
                Assert.True(ready.Elapsed < TimeSpan.FromSeconds(15), "the service never answered");
                await Task.Delay(100);
            }

            var (ok, failed, errors) = await TestLab.ProbeAcrossAgentRestartAsync(state, clientNs, new IPEndPoint(Vip, 80), [.. state.Nodes.Select(n => n.Name)]);
            Assert.True(failed == 0, $"{failed} of {ok + failed} probes through {Vip} failed ({backend}): {string.Join("; ", errors.Take(5))}");
            Assert.True(ok >= 100, $"only {ok} probes ran");
            Console.WriteLine($"probe through {Vip} ({backend}): {ok} answered; slow: {string.Join("; ", errors)}");
            foreach (var l in listeners)
            {
                l.Dispose();
            }
        }
        finally
        {
            await stop.CancelAsync();
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }
    }

    // What each backend leaves in a node: KUBE-* chains, the kube-proxy nft table, tc filters on the pods' veths.
    private const string ServiceDumpCommand =
        "iptables-save -t nat; iptables-save -t filter; nft list tables; for v in $(ip -o link show master cni0 | awk -F'[ :@]+' '{print $2}'); do tc filter show dev $v ingress; done";

    private static string Leftovers(string dump, ServiceProxyMode gone) => gone switch
    {
        ServiceProxyMode.Iptables => string.Join('\n', dump.Split('\n').Where(l => l.Contains("KUBE-SVC", StringComparison.Ordinal) || l.Contains("KUBE-SEP", StringComparison.Ordinal))),
        ServiceProxyMode.Nftables => string.Join('\n', dump.Split('\n').Where(l => l.Contains("kube-proxy", StringComparison.Ordinal))),
        _ => string.Join('\n', dump.Split('\n').Where(l => l.Contains("lb4", StringComparison.Ordinal))),
    };

    private static Service Service(string name, IPAddress ip, SessionAffinity affinity) => new()
    {
        Namespace = "default",
        Name = name,
        ClusterIp = ip,
        Ports = [new ServicePort("http", Protocol.Tcp, 80, 8080), new ServicePort("dns", Protocol.Udp, 53, 5353)],
        Selector = new Dictionary<string, string> { ["app"] = "web" },
        SessionAffinity = affinity,
    };

    // The lab's pods carry no labels yet; give the endpoints the agents registered the label the Service selects.
    private static async Task LabelAsync(IStore store, params string[] pods)
    {
        foreach (var e in (await store.ListAsync(Kinds.Endpoint)).Items.Where(e => pods.Contains(e.Value.Name)))
        {
            await store.PutAsync(Kinds.Endpoint, e.Value with { Labels = new Dictionary<string, string> { ["app"] = "web" } });
        }
    }

    private static async Task<HashSet<string>> EventuallyBothAsync(NetNsHandle clientNs, bool affinityExpected = false)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (true)
        {
            var seen = new HashSet<string>();
            try
            {
                for (var i = 0; i < 20; i++)
                {
                    seen.Add(await TcpAsync(clientNs, new IPEndPoint(Vip, 80)));
                }
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException && DateTime.UtcNow < deadline)
            {
            }

            if (affinityExpected ? seen.Count == 1 : seen.Count == 2)
            {
                return seen;
            }

            Assert.True(DateTime.UtcNow < deadline, $"saw {string.Join(",", seen)} through {Vip} (affinity {affinityExpected})");
            await Task.Delay(200);
        }
    }

    internal static async Task<string> TcpAsync(NetNsHandle ns, IPEndPoint target, TimeSpan? within = null)
    {
        using var s = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        using var timeout = new CancellationTokenSource(within ?? TimeSpan.FromSeconds(3));
        await s.ConnectAsync(target, timeout.Token);
        var buf = new byte[64];
        var n = await s.ReceiveAsync(buf, timeout.Token);
        return Encoding.ASCII.GetString(buf, 0, n);
    }

    internal static async Task<string> UdpAsync(NetNsHandle ns, IPEndPoint target, string message)
    {
        using var s = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        await s.ConnectAsync(target, timeout.Token);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            await s.SendAsync(Encoding.ASCII.GetBytes(message));
            var buf = new byte[64];
            using var wait = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
            try
            {
                var n = await s.ReceiveAsync(buf, wait.Token);
                return Encoding.ASCII.GetString(buf, 0, n);
            }
            catch (OperationCanceledException) when (DateTime.UtcNow < deadline)
            {
            }
        }
    }

    /// <summary>A pod's workload: on TCP 8080 it says its name and closes; on UDP 5353 it answers with its name.</summary>
    internal static IDisposable Serve(LabPod pod, CancellationToken ct)
    {
        var ip = IPAddress.Parse(pod.Ip!.Split('/')[0]);
        using var ns = NetNs.Open(pod.Netns);
        var tcp = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        tcp.Bind(new IPEndPoint(ip, 8080));
        tcp.Listen(128);
        var udp = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        udp.Bind(new IPEndPoint(ip, 5353));
        var name = Encoding.ASCII.GetBytes(pod.Name);
        _ = Task.Run(async () =>
        {
            while (!ct.IsCancellationRequested)
            {
                using var c = await tcp.AcceptAsync(ct);
                await c.SendAsync(name, ct);
                c.Shutdown(SocketShutdown.Both);
            }
        }, ct);
        _ = Task.Run(async () =>
        {
            var buf = new byte[64];
            EndPoint from = new IPEndPoint(IPAddress.Any, 0);
            while (!ct.IsCancellationRequested)
            {
                var r = await udp.ReceiveFromAsync(buf, from, ct);
                await udp.SendToAsync(name, r.RemoteEndPoint, ct);
            }
        }, ct);
        return new Both(tcp, udp);
    }

    private sealed class Both(Socket a, Socket b) : IDisposable
    {
        public void Dispose()
        {
            a.Dispose();
            b.Dispose();
        }
    }
}
