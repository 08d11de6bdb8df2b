using System.Net;
using Loom.Core.Cni;

namespace Loom.Lab.Tests;

/// <summary>The whole lab with real agents: nodes Ready, flannel's routes, pods talking over loom.1 and cni0.</summary>
[Collection(SequentialLab.Name)]
public sealed class ClusterTests
{
    [Fact]
    public async Task Sqlite_lab_nodes_are_ready_with_flannel_routes_and_pods_talk_across_and_within_nodes()
    {
        var rootBefore = TestLab.RootLinks();
        var o = TestLab.Options(agents: true);
        var progress = new StringWriter();
        try
        {
            var state = await Lab.UpAsync(o, progress);
            Assert.Contains("lab up: 3 nodes Ready", progress.ToString(), StringComparison.Ordinal);

            var nodes = await Lab.ReadNodesAsync(state);
            string[] names = ["k8s-ctr", "k8s-w1", "k8s-w2"];
            for (var i = 0; i < names.Length; i++)
            {
                Assert.True(nodes[names[i]].Ready);
                Assert.Equal($"10.244.{i}.0/24", nodes[names[i]].PodCidrs.Single().ToString());
                Assert.True(File.Exists(Path.Combine(o.LabDir, "nodes", names[i], "net.d", NetConf.LoomConflistName)));
                Assert.True(LabProcesses.IsAlive(state.Node(names[i]).AgentPid!.Value));
            }

            // flannel's scheme on every node: one onlink route per peer through the VXLAN device (a node is Ready
            // before it has seen peers that registered after it: give the watches a moment to converge).
            for (var i = 0; i < names.Length; i++)
            {
                var routes = await TestLab.Eventually(state.Node(names[i]).Netns, ["ip", "route"],
                    r => names.Select((_, peer) => peer).Where(peer => peer != i).All(peer => r.Contains($"10.244.{peer}.0/24 via", StringComparison.Ordinal)));
                for (var peer = 0; peer < names.Length; peer++)
                {
                    if (peer != i)
                    {
                        Assert.Contains($"10.244.{peer}.0/24 via 10.244.{peer}.0 dev loom.1 proto 76 onlink", routes, StringComparison.Ordinal);
                    }
                }
            }

            var curl = Lab.AddPod(state, "curl", "k8s-ctr");
            var web1 = Lab.AddPod(state, "web1", "k8s-w1");
            var web2 = Lab.AddPod(state, "web2", "k8s-w1");
            Assert.StartsWith("10.244.0.", curl.Ip, StringComparison.Ordinal);
            Assert.StartsWith("10.244.1.", web1.Ip, StringComparison.Ordinal);
            Assert.Equal(3, Lab.Load(o.LabDir)!.Pods.Count);
            // cni0 appears with a node's first pod, gateway = first address of the node's /24.
            Assert.Contains("10.244.0.0/24 dev cni0 proto kernel scope link src 10.244.0.1",
                await TestLab.Capture(state.Node("k8s-ctr").Netns, "ip", "route"), StringComparison.Ordinal);
            Assert.Contains("UNKNOWN", await TestLab.Capture(curl.Netns, "ip", "-br", "link", "show", "lo"), StringComparison.Ordinal);

            // Across nodes (k8s-ctr -> k8s-w1 over loom.1) and within a node (web2 -> web1 over cni0).
            Assert.Equal("echo:across", await TestLab.TcpExchange(web1.Netns, curl.Netns, Ip(web1), 8080, "across"));
            Assert.Equal("echo:within", await TestLab.TcpExchange(web1.Netns, web2.Netns, Ip(web1), 8081, "within"));

            // Pods added concurrently (as from several shells) are all recorded, with distinct addresses.
            var parallel = await Task.WhenAll(Enumerable.Range(0, 4).Select(i => Task.Run(() => Lab.AddPod(state, $"p{i}", "k8s-w2"))));
            var recorded = Lab.Load(o.LabDir)!.Pods;
            Assert.Equal(7, recorded.Count);
            Assert.Equal(4, parallel.Select(p => p.Ip).Distinct().Count());
            Assert.All(parallel, p => Assert.StartsWith("10.244.2.", p.Ip, StringComparison.Ordinal));

            Lab.DeletePod(state, "web2");
            Assert.Null(Lab.Load(o.LabDir)!.Pod("web2"));
            Assert.DoesNotContain(web2.Netns, TestLab.Namespaces(o.Prefix));
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }

        Assert.Empty(TestLab.Namespaces(o.Prefix));
        Assert.Empty(TestLab.ProcessesMentioning(o.LabDir));
        Assert.Equal(rootBefore, TestLab.RootLinks());
    }

    /// <summary>A pod reaches etcd's address but gets nothing without a certificate from the lab's CA; the agents and the lab have one.</summary>
    private static async Task AssertEtcdRequiresTheLabsCertificateAsync(LabState state, string podNetns)
    {
        var pki = LabEtcdPki.Dir(state);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(pki));
        Assert.All(Directory.GetFiles(pki, "*.key"), k => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(k)));
        Assert.Equal(state.Nodes.Count + 2, Directory.GetFiles(pki, "*.key").Length); // etcd, each node, the lab
        var agent = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(state.NodeDir("k8s-w1"), "agent.json")))!;
        Assert.Equal(LabEtcdPki.Client(state, "k8s-w1").KeyFile, agent["store"]!["tls"]!["key"]!.GetValue<string>());

        var ca = LabEtcdPki.CaFile(state);
        var lab = LabEtcdPki.Lab(state);
        string[] health = ["curl", "-sS", "--max-time", "5", "--cacert", ca, Lab.EtcdClientUrl + "/health"];
        var (code, stdout, stderr) = await LabProcesses.CaptureAsync(podNetns, health);
        // curl sees etcd's "bad certificate" alert or, when the alert races its request, the connection reset after it.
        Assert.True(code is 35 or 55 or 56, $"etcd answered a pod without a client certificate: exit {code}: {stdout} {stderr}");
        var (plain, body, _) = await LabProcesses.CaptureAsync(podNetns, ["curl", "-sS", "--max-time", "5", "http://192.168.10.100:2379/health"]);
        Assert.False(plain == 0 && body.Contains("\"health\"", StringComparison.Ordinal), $"etcd answered plain HTTP: {body}");
        var (peer, _, _) = await LabProcesses.CaptureAsync(podNetns, ["curl", "-sS", "--max-time", "5", "http://192.168.10.100:2380/members"]);
        Assert.NotEqual(0, peer);

        // The same request from the same pod with the lab's certificate goes through: the refusal above is about the certificate.
        Assert.Contains("\"health\":\"true\"", await TestLab.Capture(podNetns, [.. health[..^1], "--cert", lab.CertFile!, "--key", lab.KeyFile!, health[^1]]),
            StringComparison.Ordinal);
    }

    [Fact]
    public async Task Etcd_lab_comes_up_and_pods_talk_across_nodes()
    {
        var o = TestLab.Options(agents: true, store: LabStoreKind.Etcd);
        int? etcd = null;
        try
        {
            var state = await Lab.UpAsync(o, TextWriter.Null);
            etcd = state.EtcdPid;
            Assert.All((await Lab.ReadNodesAsync(state)).Values, n => Assert.True(n.Ready));
            var a = Lab.AddPod(state, "a", "k8s-w1");
            var b = Lab.AddPod(state, "b", "k8s-w2");
            Assert.Equal("echo:over-etcd", await TestLab.TcpExchange(b.Netns, a.Netns, Ip(b), 8080, "over-etcd"));
            await AssertEtcdRequiresTheLabsCertificateAsync(state, a.Netns);
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }

        Assert.False(LabProcesses.IsAlive(etcd ?? 0));
        Assert.Empty(TestLab.Namespaces(o.Prefix));
        Assert.Empty(TestLab.ProcessesMentioning(o.LabDir));
    }

    [Fact]
    public async Task An_agent_that_dies_fails_up_with_its_log()
    {
        var o = TestLab.Options(agents: true) with { LoomPath = "/bin/false" };
        try
        {
            var e = await Assert.ThrowsAsync<LabException>(() => Lab.UpAsync(o, TextWriter.Null));
            Assert.Contains("agent on k8s-ctr", e.Message, StringComparison.Ordinal);
            Assert.Contains("agent.log", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }

        Assert.Empty(TestLab.Namespaces(o.Prefix));
    }

    private static IPAddress Ip(LabPod pod) => IPAddress.Parse(pod.Ip!.Split('/')[0]);
}
