using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Linux;
using Loom.Store.Sqlite;

namespace Loom.Lab.Tests;

/// <summary>
/// The upstream NetworkPolicy e2e model in the lab, through the CLI: namespaced pods of agnhost containers (one per
/// port and protocol) probed with <c>agnhost connect</c>, Namespace and NetworkPolicy objects applied from stdin
/// into the store, named container ports on the agent's Endpoint.
/// </summary>
[Collection(SequentialLab.Name)]
public sealed class PolicyLabTests
{
    private const string Agnhost = "registry.k8s.io/e2e-test-images/agnhost:2.53";

    // Pod NS/NAME on NODE: a container per port and protocol, as the e2e's kubemanager makes them.
    private static string Pod(string ns, string name, string node) => $"""
        apiVersion: v1
        kind: Pod
        metadata:
          name: {name}
          namespace: {ns}
          labels:
            pod: {name}
        spec:
          nodeName: {node}
          containers:
        {Container(80, "tcp")}{Container(81, "tcp")}{Container(80, "udp")}{Container(81, "udp")}
        """;

    private static string Container(int port, string protocol) => $"""
          - name: cont-{port}-{protocol}
            image: {Agnhost}
            command: ["/agnhost", "serve-hostname", "--{protocol}", "--http=false", "--port", "{port}"]
            ports:
            - containerPort: {port}
              name: serve-{port}-{protocol}
              protocol: {protocol.ToUpperInvariant()}

        """;

    private const string Objects = """
        apiVersion: v1
        kind: Namespace
        metadata:
          name: x
          labels:
            ns: x
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: allow-from-x
          namespace: w
        spec:
          podSelector:
            matchLabels:
              pod: a
          ingress:
          - from:
            - namespaceSelector:
                matchLabels:
                  ns: x
            ports:
            - port: serve-80-tcp
            - protocol: UDP
              port: 81

        """;

    [Fact]
    public async Task Namespaced_agnhost_pods_answer_probes_and_policy_objects_land_in_the_store()
    {
        var o = TestLab.Options(agents: true);
        string[] lab = ["lab", "--lab-dir", o.LabDir, "--prefix", o.Prefix];
        Task<CliScenarioTests.Run> Loom(string[] args, string? stdin = null) => CliScenarioTests.Loom([.. lab, .. args], stdin);
        try
        {
            var state = await Lab.UpAsync(o, TextWriter.Null);
            var apply = await Loom(["apply", "-f", "-"], string.Join("---\n", Pod("x", "a", "k8s-w1"), Pod("y", "a", "k8s-w2"), Pod("z", "b", "k8s-w1"), Objects));
            Assert.True(apply.Code == 0, apply.ToString());
            Assert.Contains("namespace/x created", apply.Out, StringComparison.Ordinal);
            Assert.Contains("networkpolicy.networking.k8s.io/allow-from-x created", apply.Out, StringComparison.Ordinal);
            Assert.DoesNotContain("Warning", apply.Out, StringComparison.Ordinal);
            state = Lab.Load(o.LabDir)!;
            var xa = state.Pod("x", "a")!;
            var ya = state.Pod("y", "a")!;
            Assert.NotEqual(xa.Netns, ya.Netns);
            Assert.Equal(("k8s-w1", "k8s-w2"), (xa.Node, ya.Node));

            var pods = await Loom(["get", "pods", "-A"]);
            Assert.Matches(@"x\s+a\s+4/4\s+Running", pods.Out);
            Assert.Matches(@"y\s+a\s+4/4\s+Running", pods.Out);
            Assert.Equal("No resources found.\n", (await Loom(["get", "pods"])).Out);
            Assert.DoesNotMatch(@"\by\b", (await Loom(["get", "pods", "-n", "x"])).Out);
            var json = (await Loom(["get", "pods", "-n", "x", "-o", "json"])).Out;
            Assert.Contains("\"name\": \"serve-81-udp\",\n", json, StringComparison.Ordinal);
            Assert.Contains("\"protocol\": \"UDP\"", json, StringComparison.Ordinal);

            // A bare pod (lab pod add) in a namespace: a name another namespace already uses.
            var bare = await Loom(["pod", "add", "b", "-n", "y", "--node", "k8s-ctr"]);
            Assert.True(bare.Code == 0, bare.ToString());
            Assert.Matches(@"y\s+b\s+k8s-ctr\s+10\.244\.0\.\d+/24\s+" + o.Prefix + "pod-y_b", (await Loom(["pod", "list"])).Out);
            Assert.Equal(0, (await Loom(["pod", "del", "b", "-n", "y"])).Code);
            Assert.NotNull(Lab.Load(o.LabDir)!.Pod("z", "b"));

            // From z/b: both a's, each port, each protocol; a closed port is refused, as agnhost reports it.
            foreach (var target in new[] { xa, ya })
            {
                foreach (var (port, protocol) in new[] { (80, "tcp"), (81, "tcp"), (80, "udp"), (81, "udp") })
                {
                    var probe = await Loom(["exec", "-n", "z", "b", "-c", "cont-80-tcp", "--", "agnhost", "connect", $"{target.Address}:{port}", "--timeout=3s", $"--protocol={protocol}"]);
                    Assert.True(probe.Code == 0, $"{target.Namespace}/{target.Name} {port}/{protocol}: {probe}");
                }
            }

            var closed = await Loom(["exec", "-n", "z", "b", "--", "agnhost", "connect", $"{ya.Address}:82", "--timeout=1s", "--protocol=tcp"]);
            Assert.Equal((1, "REFUSED\n"), (closed.Code, closed.Err));
            Assert.Contains("container nope is not valid for pod b", (await Loom(["exec", "-n", "z", "b", "-c", "nope", "--", "true"])).Err, StringComparison.Ordinal);

            // serve-hostname answers with the pod's name over TCP and UDP.
            Assert.Equal("a", await ExchangeAsync(state.Pod("z", "b")!, new IPEndPoint(xa.Address!, 81), SocketType.Stream));
            Assert.Equal("a", await ExchangeAsync(state.Pod("z", "b")!, new IPEndPoint(ya.Address!, 80), SocketType.Dgram));

            var logs = await Loom(["logs", "-n", "x", "a", "-c", "cont-81-udp"]);
            Assert.Contains("serve-hostname a: UDP on :81", logs.Out, StringComparison.Ordinal);
            Assert.Contains("serve-hostname a: TCP on :80", (await Loom(["logs", "-n", "x", "a"])).Out, StringComparison.Ordinal);

            var store = await SqliteStore.OpenAsync(state.StorePath!);
            await using (store)
            {
                var ns = (await store.GetAsync(Kinds.Namespace, "x"))!.Value;
                Assert.Equal("x", ns.Labels["ns"]);
                var policy = (await store.GetAsync(Kinds.NetworkPolicy, "w/allow-from-x"))!.Value;
                Assert.Equal("x", Assert.Single(Assert.Single(policy.Ingress).From).NamespaceSelector!.MatchLabels["ns"]);
                Assert.Equal(["serve-80-tcp", "81"], policy.Ingress[0].Ports.Select(p => p.Port));
                Assert.Null(policy.PolicyTypes);

                // The named container ports reach the agent's Endpoint.
                var endpoint = (await store.GetAsync(Kinds.Endpoint, "x/a"))!.Value;
                Assert.Equal(
                    [new("serve-80-tcp", 80, Protocol.Tcp), new("serve-81-tcp", 81, Protocol.Tcp), new("serve-80-udp", 80, Protocol.Udp), new("serve-81-udp", 81, Protocol.Udp)],
                    endpoint.Ports);

                // A bad policy, with a namespace in the same input: refused naming the field, and nothing of it written.
                var bad = await Loom(["apply", "-f", "-"], "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: v\n---\n"
                    + Objects.Replace("name: allow-from-x", "name: bad", StringComparison.Ordinal).Replace("- port: serve-80-tcp", "- port: [80]", StringComparison.Ordinal)
                        .Replace("ns: x\n    ports:", "ns: x\n        matchExpressions:\n        - {key: ns, operator: Near}\n    ports:", StringComparison.Ordinal));
                Assert.Equal(1, bad.Code);
                Assert.Contains("NetworkPolicy/bad: spec.ingress[0].ports[0].port: Invalid value: must be an integer or a string", bad.Err, StringComparison.Ordinal);
                Assert.Contains("NetworkPolicy/bad: spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].operator: Unsupported value: \"Near\"", bad.Err, StringComparison.Ordinal);
                Assert.Null(await store.GetAsync(Kinds.NetworkPolicy, "w/bad"));
                Assert.Null(await store.GetAsync(Kinds.Namespace, "v"));

                var netpol = await Loom(["get", "netpol", "-A"]);
                Assert.Matches(@"w\s+allow-from-x\s+pod=a", netpol.Out);
                Assert.Matches(@"x\s+Active", (await Loom(["get", "ns"])).Out);

                // delete -n removes x/a only; the namespace object and the policy go by name and by manifest.
                var del = await Loom(["delete", "pod", "a", "-n", "x"]);
                Assert.True(del.Code == 0, del.ToString());
                state = Lab.Load(o.LabDir)!;
                Assert.Null(state.Pod("x", "a"));
                Assert.NotNull(state.Pod("y", "a"));
                Assert.False(NetNs.Exists(xa.Netns));
                Assert.True(NetNs.Exists(ya.Netns));
                var still = await Loom(["exec", "-n", "z", "b", "--", "agnhost", "connect", $"{ya.Address}:80", "--timeout=3s"]);
                Assert.True(still.Code == 0, still.ToString()); // the node's bridge kept its MAC when x/a's veth, maybe the lowest, went
                Assert.Equal(1, (await Loom(["delete", "pod", "a", "-n", "x"])).Code);

                Assert.Equal(0, (await Loom(["delete", "namespace", "x"])).Code);
                Assert.Null(await store.GetAsync(Kinds.Namespace, "x"));
                var delPolicy = await Loom(["delete", "-f", "-"], Objects);
                Assert.Contains("networkpolicy.networking.k8s.io/allow-from-x deleted", delPolicy.Out, StringComparison.Ordinal);
                Assert.Null(await store.GetAsync(Kinds.NetworkPolicy, "w/allow-from-x"));
            }

            // One of y/a's containers dies: the pod shows it.
            var udp81 = Lab.Load(o.LabDir)!.Pod("y", "a")!.Processes.Single(w => w.Container == "cont-81-udp");
            LabProcesses.Kill(udp81.Pid);
            await Task.Delay(200);
            Assert.Matches(@"a\s+3/4\s+Error", (await Loom(["get", "pods", "-n", "y"])).Out);
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }
    }

    // One exchange from a pod's namespace: a TCP connection read to its end, or a datagram and its answer.
    private static async Task<string> ExchangeAsync(LabPod from, IPEndPoint to, SocketType type)
    {
        using var ns = NetNs.Open(from.Netns);
        using var s = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, type, type == SocketType.Stream ? ProtocolType.Tcp : ProtocolType.Udp));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await s.ConnectAsync(to, cts.Token);
        if (type == SocketType.Dgram)
        {
            await s.SendAsync("hostname\n"u8.ToArray(), SocketFlags.None, cts.Token);
        }

        var buffer = new byte[256];
        var text = new StringBuilder();
        int n;
        while ((n = await s.ReceiveAsync(buffer, SocketFlags.None, cts.Token)) > 0)
        {
            text.Append(Encoding.UTF8.GetString(buffer, 0, n));
            if (type == SocketType.Dgram)
            {
                break;
            }
        }

        return text.ToString();
    }
}
