using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Core.Model;
using Loom.Linux;
using Xunit.Abstractions;
using static Loom.Lab.Tests.Policy.Reachability;

namespace Loom.Lab.Tests.Policy;

/// <summary>
/// Issue 14: the upstream NetworkPolicy e2e model (x, y, z x a, b, c over three nodes) on the Flannel-style cluster
/// (bridge, VXLAN, iptables Services) and the Cilium-style one (routed, native, eBPF Services and host routing): each
/// case applies its policies, probes the full 9 x 9 matrix with real connections until it matches (or 10 s), deletes
/// them and sees everything open again before the next.
/// </summary>
[Collection(SequentialLab.Name)]
public sealed class NetworkPolicyTests(ITestOutputHelper output)
{
    public static TheoryData<string> Clusters => ["flannel", "cilium"];

    [Theory]
    [MemberData(nameof(Clusters))]
    public async Task The_upstream_model_matches_every_case_on_the_cluster(string cluster)
    {
        var c = NetworkCombination.For(cluster);
        var o = TestLab.Options(agents: true) with { Cluster = c.File, ServiceBackend = c.File.Cluster.ServiceBackend };
        try
        {
            var state = await Lab.UpAsync(o, TextWriter.Null);
            var lab = new PolicyLab(state, output);
            await lab.ApplyAsync(PolicyLab.ModelYaml());
            var open = new Reachability(PolicyLab.AllPods, true);
            await lab.ExpectAsync("no policy", open);
            await lab.ExpectAsync("no policy", open, 81, ProtocolType.Udp);

            foreach (var (name, yaml, checks) in Cases(lab))
            {
                await lab.ApplyAsync(yaml);
                foreach (var (expected, port, protocol) in checks)
                {
                    await lab.ExpectAsync(name, expected, port, protocol);
                }

                await lab.DeleteAsync(yaml);
                await lab.ExpectAsync(name + ", deleted", open);
            }
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix, TextWriter.Null);
        }
    }

    private static IEnumerable<(string Name, string Yaml, (Reachability Expected, int Port, ProtocolType Protocol)[] Checks)> Cases(PolicyLab lab)
    {
        var pods = PolicyLab.AllPods;
        Reachability Open() => new(pods, true);
        (Reachability, int, ProtocolType) Tcp80(Reachability r) => (r, 80, ProtocolType.Tcp);

        yield return ("default deny ingress in x", Policy("x", "deny-ingress", "podSelector: {}", "policyTypes: [Ingress]"),
            [Tcp80(Open().Expect(null, InNamespace("x"), false))]);
        yield return ("default deny egress in x", Policy("x", "deny-egress", "podSelector: {}", "policyTypes: [Egress]"),
            [Tcp80(Open().Expect(InNamespace("x"), null, false))]);
        yield return ("default deny both in x", Policy("x", "deny-all", "podSelector: {}", "policyTypes: [Ingress, Egress]"),
            [Tcp80(Open().Expect(null, InNamespace("x"), false).Expect(InNamespace("x"), null, false))]);
        yield return ("deny ingress then allow all ingress in x",
            Policy("x", "deny-ingress", "podSelector: {}", "policyTypes: [Ingress]") + "---\n" + Policy("x", "allow-all", "podSelector: {}", "ingress:\n  - {}"),
            [Tcp80(Open())]);
        yield return ("x/a from pod=b of x", Policy("x", "from-b", "podSelector: {matchLabels: {pod: a}}", """
            ingress:
              - from:
                - podSelector: {matchLabels: {pod: b}}
            """), [Tcp80(Open().ExpectAllIngress("x/a", false).ExpectPeer("x/b", "x/a", true))]);
        yield return ("x/a from namespace ns=y", Policy("x", "from-y", "podSelector: {matchLabels: {pod: a}}", """
            ingress:
              - from:
                - namespaceSelector: {matchLabels: {ns: y}}
            """), [Tcp80(Open().ExpectAllIngress("x/a", false).Expect(InNamespace("y"), p => p == "x/a", true))]);
        yield return ("x/a from ns=y AND pod=b (one peer)", Policy("x", "and", "podSelector: {matchLabels: {pod: a}}", """
            ingress:
              - from:
                - namespaceSelector: {matchLabels: {ns: y}}
                  podSelector: {matchLabels: {pod: b}}
            """), [Tcp80(Open().ExpectAllIngress("x/a", false).ExpectPeer("y/b", "x/a", true))]);
        yield return ("x/a from ns=y OR pod=b (two peers)", Policy("x", "or", "podSelector: {matchLabels: {pod: a}}", """
            ingress:
              - from:
                - namespaceSelector: {matchLabels: {ns: y}}
                - podSelector: {matchLabels: {pod: b}}
            """), [Tcp80(Open().ExpectAllIngress("x/a", false).Expect(InNamespace("y"), p => p == "x/a", true).ExpectPeer("x/b", "x/a", true))]);
        yield return ("x/a from ns NotIn (y) and pod In (b, c)", Policy("x", "exprs", "podSelector: {matchExpressions: [{key: pod, operator: In, values: [a]}]}", """
            ingress:
              - from:
                - namespaceSelector:
                    matchExpressions: [{key: ns, operator: NotIn, values: [y]}]
                  podSelector:
                    matchExpressions: [{key: pod, operator: In, values: [b, c]}]
            """), [Tcp80(Open().ExpectAllIngress("x/a", false).ExpectPeer("x/b", "x/a", true).ExpectPeer("x/c", "x/a", true)
                .ExpectPeer("z/b", "x/a", true).ExpectPeer("z/c", "x/a", true))]);
        yield return ("x/a from (namespaces without ns) OR (pods of x with pod)", Policy("x", "exists", "podSelector: {matchLabels: {pod: a}}", """
            ingress:
              - from:
                - namespaceSelector:
                    matchExpressions: [{key: ns, operator: DoesNotExist}]
                - podSelector:
                    matchExpressions: [{key: pod, operator: Exists}]
            """), [Tcp80(Open().ExpectAllIngress("x/a", false).Expect(InNamespace("x"), p => p == "x/a", true))]);
        yield return ("x/a only on port 81", Policy("x", "port-81", "podSelector: {matchLabels: {pod: a}}", """
            ingress:
              - ports:
                - port: 81
            """), [Tcp80(Open().ExpectAllIngress("x/a", false)), (Open(), 81, ProtocolType.Tcp)]);
        yield return ("x/a only on the named port serve-81-tcp", Policy("x", "named", "podSelector: {matchLabels: {pod: a}}", """
            ingress:
              - ports:
                - port: serve-81-tcp
            """), [Tcp80(Open().ExpectAllIngress("x/a", false)), (Open(), 81, ProtocolType.Tcp), (Open().ExpectAllIngress("x/a", false), 81, ProtocolType.Udp)]);
        yield return ("x/a egress to the named port serve-81-udp only", Policy("x", "named-egress", "podSelector: {matchLabels: {pod: a}}", """
            policyTypes: [Egress]
            egress:
              - ports:
                - port: serve-81-udp
                  protocol: UDP
            """), [Tcp80(Open().ExpectAllEgress("x/a", false)), (Open(), 81, ProtocolType.Udp), (Open().ExpectAllEgress("x/a", false), 80, ProtocolType.Udp)]);
        yield return ("x/a on ports 81-90 (endPort)", Policy("x", "range", "podSelector: {matchLabels: {pod: a}}", """
            ingress:
              - ports:
                - port: 81
                  endPort: 90
            """), [Tcp80(Open().ExpectAllIngress("x/a", false)), (Open(), 81, ProtocolType.Tcp)]);
        yield return ("x/a UDP 81 only", Policy("x", "udp", "podSelector: {matchLabels: {pod: a}}", """
            ingress:
              - ports:
                - port: 81
                  protocol: UDP
            """), [(Open(), 81, ProtocolType.Udp), (Open().ExpectAllIngress("x/a", false), 80, ProtocolType.Udp), (Open().ExpectAllIngress("x/a", false), 81, ProtocolType.Tcp)]);
        var yb = lab.Ip("y/b");
        var block = new IPNetwork(new IPAddress([yb.GetAddressBytes()[0], yb.GetAddressBytes()[1], yb.GetAddressBytes()[2], 0]), 24);
        yield return ($"x/a egress to {block} except y/b", Policy("x", "ipblock", "podSelector: {matchLabels: {pod: a}}", $$"""
            policyTypes: [Egress]
            egress:
              - to:
                - ipBlock:
                    cidr: {{block}}
                    except: [{{yb}}/32]
            """), [Tcp80(Open().ExpectAllEgress("x/a", false).ExpectPeer("x/a", "x/b", true).ExpectPeer("x/a", "z/b", true))]);
        yield return ("x/a ingress from y, egress to z", Policy("x", "both", "podSelector: {matchLabels: {pod: a}}", """
            policyTypes: [Ingress, Egress]
            ingress:
              - from:
                - namespaceSelector: {matchLabels: {ns: y}}
            egress:
              - to:
                - namespaceSelector: {matchLabels: {ns: z}}
            """), [Tcp80(Open().ExpectAllIngress("x/a", false).Expect(InNamespace("y"), p => p == "x/a", true)
                .ExpectAllEgress("x/a", false).Expect(p => p == "x/a", InNamespace("z"), true))]);
        yield return ("two policies on x/a are a union", Policy("x", "from-b", "podSelector: {matchLabels: {pod: a}}", """
            ingress:
              - from:
                - podSelector: {matchLabels: {pod: b}}
            """) + "---\n" + Policy("x", "from-z", "podSelector: {matchLabels: {pod: a}}", """
            ingress:
              - from:
                - namespaceSelector: {matchLabels: {ns: z}}
            """), [Tcp80(Open().ExpectAllIngress("x/a", false).ExpectPeer("x/b", "x/a", true).Expect(InNamespace("z"), p => p == "x/a", true))]);
        yield return ("a policy selecting no pod changes nothing", Policy("x", "nobody", "podSelector: {matchLabels: {pod: nobody}}", "policyTypes: [Ingress, Egress]"),
            [Tcp80(Open())]);
    }

    [Theory]
    [MemberData(nameof(Clusters))]
    public async Task Modes_switch_live_and_a_connection_opened_before_a_deny_keeps_its_verdict(string cluster)
    {
        var c = NetworkCombination.For(cluster);
        var o = TestLab.Options(agents: true) with { Cluster = c.File, ServiceBackend = c.File.Cluster.ServiceBackend };
        using var stop = new CancellationTokenSource();
        try
        {
            var state = await Lab.UpAsync(o, TextWriter.Null);
            var lab = new PolicyLab(state, output);
            await lab.ApplyAsync(PolicyLab.ModelYaml());
            var pods = PolicyLab.AllPods;
            await lab.ExpectAsync("no policy", new Reachability(pods, true));

            // always: nothing passes between pods without a policy; never: even a deny-all is ignored.
            await lab.SetModeAsync(PolicyEnforcementMode.Always);
            await lab.ExpectAsync("mode always", new Reachability(pods, false));
            var onW1 = (Func<string, bool>)(p => p.EndsWith("/a", StringComparison.Ordinal));
            await lab.SetModeAsync(PolicyEnforcementMode.Never, "k8s-w1");
            await lab.ExpectAsync("always, k8s-w1 never", new Reachability(pods, false).Expect(onW1, onW1, true));
            await lab.ClearNodeModeAsync("k8s-w1");
            var denyAll = Policy("x", "deny-all", "podSelector: {}", "policyTypes: [Ingress, Egress]");
            await lab.ApplyAsync(denyAll);
            await lab.SetModeAsync(PolicyEnforcementMode.Never);
            await lab.ExpectAsync("mode never, deny-all in x", new Reachability(pods, true));
            await lab.SetModeAsync(PolicyEnforcementMode.Default);
            await lab.ExpectAsync("mode default, deny-all in x", new Reachability(pods, true).Expect(null, InNamespace("x"), false).Expect(InNamespace("x"), null, false));
            await lab.DeleteAsync(denyAll);
            await lab.ExpectAsync("deny-all deleted", new Reachability(pods, true));

            // A connection y/b -> x/a opened while open keeps working after a deny-all ingress on x/a; a new one fails.
            var xa = lab.Pod("x/a");
            using var xaNs = NetNs.Open(xa.Netns);
            using var listener = NetNs.Run(xaNs, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            listener.Bind(new IPEndPoint(xa.Address!, 9000));
            listener.Listen();
            var echo = EchoEveryReadAsync(listener, stop.Token);
            using var ybNs = NetNs.Open(lab.Pod("y/b").Netns);
            using var client = NetNs.Run(ybNs, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            await client.ConnectAsync(new IPEndPoint(xa.Address!, 9000));
            Assert.Equal("one", await Exchange(client, "one"));
            Assert.True(await HandshakeAsync(lab.Pod("y/b").Netns, xa.Address!, 9000), "a second connection to x/a:9000 before the deny failed");
            var denyA = Policy("x", "deny-a", "podSelector: {matchLabels: {pod: a}}", "policyTypes: [Ingress]");
            await lab.ApplyAsync(denyA);
            await lab.ExpectAsync("deny ingress to x/a", new Reachability(pods, true).ExpectAllIngress("x/a", false));
            Assert.Equal("two", await Exchange(client, "two"));
            Assert.False(await HandshakeAsync(lab.Pod("y/b").Netns, xa.Address!, 9000), "a new connection to x/a:9000 after the deny was accepted");
            Assert.Equal("three", await Exchange(client, "three"));
            await lab.DeleteAsync(denyA);

            // Egress through a ClusterIP is judged by the backend it reaches (after kube-proxy's DNAT on the
            // Flannel-style cluster, after eBPF's on the Cilium-style one).
            var services = Service("y", "s-y-b", "10.96.0.81", "b") + "---\n" + Service("y", "s-y-c", "10.96.0.82", "c");
            var toYb = Policy("x", "to-y-b", "podSelector: {matchLabels: {pod: a}}", """
                policyTypes: [Egress]
                egress:
                  - to:
                    - namespaceSelector: {matchLabels: {ns: y}}
                      podSelector: {matchLabels: {pod: b}}
                    ports:
                    - port: 80
                """);
            await lab.ApplyAsync(services + "---\n" + toYb);
            await Eventually("x/a -> s-y-b allowed, x/a -> s-y-c denied, x/b -> s-y-c allowed", async () =>
                await Probe(lab, "x/a", "10.96.0.81") == "b" && await Probe(lab, "x/a", "10.96.0.82") is null && await Probe(lab, "x/b", "10.96.0.82") == "c");
            await lab.DeleteAsync(services + "---\n" + toYb);
        }
        finally
        {
            await stop.CancelAsync();
            await Lab.DownAsync(o.LabDir, o.Prefix, TextWriter.Null);
        }
    }

    /// <summary>Every connection served at once, every read echoed until the peer closes: long-lived connections.</summary>
    private static async Task EchoEveryReadAsync(Socket listener, CancellationToken ct)
    {
        try
        {
            while (true)
            {
                var conn = await listener.AcceptAsync(ct);
                _ = Task.Run(async () =>
                {
                    using (conn)
                    {
                        var buf = new byte[64];
                        int n;
                        while ((n = await conn.ReceiveAsync(buf, ct)) > 0)
                        {
                            await conn.SendAsync(buf.AsMemory(0, n), ct);
                        }
                    }
                }, ct);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Whether a TCP handshake to ip:port completes from <paramref name="netns"/> within a second.</summary>
    private static async Task<bool> HandshakeAsync(string netns, IPAddress ip, int port)
    {
        using var ns = NetNs.Open(netns);
        using var socket = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        try
        {
            await socket.ConnectAsync(new IPEndPoint(ip, port), cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static async Task<string?> Probe(PolicyLab lab, string from, string ip)
    {
        var (ok, detail) = await PolicyProbe.ConnectAsync(lab.Pod(from).Netns, IPAddress.Parse(ip), 80, ProtocolType.Tcp, TimeSpan.FromSeconds(1));
        return ok ? detail : null;
    }

    private async Task Eventually(string what, Func<Task<bool>> check)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (!await check())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not within 15 s: {what}");
            await Task.Delay(200);
        }

        output.WriteLine($"{what}: as expected");
    }

    private static string Service(string ns, string name, string ip, string pod) => $"""
        apiVersion: v1
        kind: Service
        metadata:
          name: {name}
          namespace: {ns}
        spec:
          clusterIP: {ip}
          selector:
            pod: {pod}
          ports:
          - port: 80
            targetPort: 80

        """;

    private static async Task<string> Exchange(Socket client, string text)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await client.SendAsync(Encoding.ASCII.GetBytes(text), cts.Token);
        var buf = new byte[64];
        var n = await client.ReceiveAsync(buf, cts.Token);
        return Encoding.ASCII.GetString(buf, 0, n);
    }

    internal static string Policy(string ns, string name, string podSelector, string spec) => $"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: {name}
          namespace: {ns}
        spec:
          {podSelector}
        {Indent(spec)}

        """;

    private static string Indent(string text) => string.Join("\n", text.Split('\n').Select(l => l.Length == 0 ? l : "  " + l));
}
