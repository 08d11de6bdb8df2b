using System.Diagnostics;
using System.Net;
using System.Text.Json;

namespace Loom.Lab.Tests;

/// <summary>docs/scenario.md sections 1-4 from the YAML in examples/scenario, on a whole lab with real agents and loom-cni.</summary>
[Collection(SequentialLab.Name)]
public sealed class ScenarioTests
{
    [Fact]
    public async Task The_scenario_runs_end_to_end_from_its_yaml()
    {
        var rootBefore = TestLab.RootLinks();
        var o = TestLab.Options(agents: true) with { ClusterDns = true };
        var log = new StringWriter();
        var clock = Stopwatch.StartNew();
        try
        {
            var state = await Lab.UpAsync(o, log);
            Assert.Contains("cluster DNS: pod kube-system/coredns-", log.ToString(), StringComparison.Ordinal);
            // Two replicas, as kubeadm's CoreDNS, on two nodes (the control plane tolerated).
            var dns = state.Pods.Where(p => p.Namespace == "kube-system").OrderBy(p => p.Node, StringComparer.Ordinal).ToList();
            Assert.Equal(["k8s-ctr", "k8s-w1"], dns.Select(p => p.Node));
            Assert.All(dns, p => Assert.Matches("^coredns-[bcdfghjklmnpqrstvwxz2456789]+-[bcdfghjklmnpqrstvwxz2456789]{5}$", p.Name));

            var output = new StringWriter();
            await Lab.ApplyAsync(state, ManifestTests.Example("webpod.yaml"), output);
            await Lab.ApplyAsync(state, ManifestTests.Example("curl-pod.yaml"), output);
            var text = output.ToString();
            Assert.Contains("deployment.apps/webpod created", text, StringComparison.Ordinal);
            Assert.Contains("service/webpod created", text, StringComparison.Ordinal);
            Assert.Contains("pod/curl-pod created", text, StringComparison.Ordinal);

            // Placement: anti-affinity puts one webpod on each worker, none on the tainted control plane; curl-pod pinned there.
            var webpods = state.Pods.Where(p => p.Owner == "webpod").OrderBy(p => p.Node, StringComparer.Ordinal).ToList();
            Assert.Equal(["k8s-w1", "k8s-w2"], webpods.Select(p => p.Node));
            Assert.All(webpods, p => Assert.Matches("^webpod-[a-z0-9]+-[a-z0-9]{5}$", p.Name));
            Assert.Equal("k8s-ctr", state.Pod("curl-pod")!.Node);
            Assert.StartsWith("10.244.1.", webpods[0].Ip, StringComparison.Ordinal);
            Assert.StartsWith("10.244.2.", webpods[1].Ip, StringComparison.Ordinal);

            // kubectl get
            var pods = await LabGet.GetAsync(state, "pods", "wide", "default");
            Assert.Matches(@"curl-pod\s+1/1\s+Running\s+0\s+\S+\s+10\.244\.0\.\d+\s+k8s-ctr", pods);
            var svc = await LabGet.GetAsync(state, "svc", "", "default");
            var clusterIp = JsonDocument.Parse(await LabGet.GetAsync(state, "svc", "json", "default")).RootElement
                .GetProperty("items")[0].GetProperty("spec").GetProperty("clusterIP").GetString()!;
            Assert.Matches($@"webpod\s+ClusterIP\s+{Regex(clusterIp)}\s+<none>\s+80/TCP", svc);
            var endpoints = await LabGet.GetAsync(state, "endpoints", "", "default");
            Assert.Contains($"{Ip(webpods[0])}:80,{Ip(webpods[1])}:80", endpoints, StringComparison.Ordinal);
            var nodes = await LabGet.GetAsync(state, "nodes", "", null);
            Assert.Matches(@"k8s-ctr\s+Ready\s+control-plane", nodes);
            var json = JsonDocument.Parse(await LabGet.GetAsync(state, "pods", "json", null)).RootElement;
            Assert.Equal("List", json.GetProperty("kind").GetString());
            Assert.Contains(json.GetProperty("items").EnumerateArray(), i => i.GetProperty("status").GetProperty("podIP").GetString() == Ip(webpods[0])
                && i.GetProperty("status").GetProperty("hostIP").GetString() == "192.168.10.101" && i.GetProperty("status").GetProperty("phase").GetString() == "Running");

            // Cross-node pod IP: curl-pod (k8s-ctr) -> a webpod on k8s-w2 answers like traefik/whoami.
            var whoami = await Exec(state, "curl-pod", "curl", "-s", "-m", "5", $"http://{Ip(webpods[1])}/");
            Assert.Contains($"Hostname: {webpods[1].Name}", whoami, StringComparison.Ordinal);
            Assert.Contains($"IP: {Ip(webpods[1])}", whoami, StringComparison.Ordinal);
            Assert.Contains($"RemoteAddr: {Ip(state.Pod("curl-pod")!)}:", whoami, StringComparison.Ordinal);
            Assert.Contains("GET / HTTP/1.1", whoami, StringComparison.Ordinal);

            // DNS, straight at each DNS pod (k8s-w1's, then k8s-ctr's): the pod's resolv.conf search list makes "webpod" webpod.default.svc.cluster.local.
            Assert.Contains("search default.svc.cluster.local svc.cluster.local cluster.local", await Exec(state, "curl-pod", "cat", "/etc/resolv.conf"), StringComparison.Ordinal);
            var direct = await Exec(state, "curl-pod", "nslookup", "webpod", Ip(dns[1]));
            Assert.Contains("Name:\twebpod.default.svc.cluster.local", direct, StringComparison.Ordinal);
            Assert.Contains($"Address: {clusterIp}", direct, StringComparison.Ordinal);
            var (code, bogusOut, _) = await Lab.PodCaptureAsync(state, "curl-pod", ["nslookup", "bogus.default.svc.cluster.local", Ip(dns[0])]);
            Assert.NotEqual(0, code);
            Assert.Contains("NXDOMAIN", bogusOut, StringComparison.Ordinal);

            // kube-proxy's rules on k8s-ctr (docs/scenario.md section 4).
            var rules = await TestLab.Eventually(state.Node("k8s-ctr").Netns, ["iptables-save", "-t", "nat"],
                r => r.Contains("default/webpod -> " + Ip(webpods[1]), StringComparison.Ordinal));
            Assert.Matches($@"-A KUBE-SERVICES -d {Regex(clusterIp)}/32 -p tcp -m comment --comment ""default/webpod cluster IP"" -m tcp --dport 80 -j KUBE-SVC-\w+", rules);
            Assert.Matches(@"-A KUBE-SVC-\w+ .*--comment ""default/webpod -> 10\.244\.1\.\d+:80"" -m statistic --mode random --probability 0\.50000000000 -j KUBE-SEP-\w+", rules);
            Assert.Contains("-d 10.96.0.10/32 -p udp -m comment --comment \"kube-system/kube-dns:dns cluster IP\"", rules, StringComparison.Ordinal);

            // Through the Service: DNS via 10.96.0.10 (the load balancer), then curl webpod alternating between both replicas.
            var lookup = await Exec(state, "curl-pod", "nslookup", "webpod");
            Assert.Contains("Server:\t\t10.96.0.10", lookup, StringComparison.Ordinal);
            Assert.Contains($"Address: {clusterIp}", lookup, StringComparison.Ordinal);
            var (nx, nxOut, _) = await Lab.PodCaptureAsync(state, "curl-pod", ["nslookup", "bogus"]);
            Assert.NotEqual(0, nx);
            Assert.Contains("NXDOMAIN", nxOut, StringComparison.Ordinal);
            // Each request picks a replica with probability 1/2: 10 requests see both but for 2 chances in 1024, so a
            // run that has not yet goes on (up to 30) rather than flake; the assertion is the same.
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < 30 && (i < 10 || seen.Count < 2); i++)
            {
                var body = await Exec(state, "curl-pod", "curl", "-s", "-m", "5", "webpod");
                seen.Add(body.Split('\n')[0]);
            }

            Assert.Equal(webpods.Select(p => $"Hostname: {p.Name}").Order(StringComparer.Ordinal), seen.Order(StringComparer.Ordinal));

            // Drain a worker: its webpod is recreated... nowhere (ctr tainted, w2 has one), so it stays Pending with the reason.
            var drain = new StringWriter();
            await Lab.DrainAsync(state, "k8s-w1", force: false, drain);
            Assert.Contains("0/3 nodes are available: 1 node(s) didn't match pod anti-affinity rules, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 1 node(s) were unschedulable.",
                drain.ToString(), StringComparison.Ordinal);
            Assert.Single(state.Pending);
            await Lab.CordonAsync(state, "k8s-w1", false, TextWriter.Null);
            Assert.Empty(state.Pending);
            Assert.Equal(["k8s-w1", "k8s-w2"], state.Pods.Where(p => p.Owner == "webpod").Select(p => p.Node).Order(StringComparer.Ordinal));

            await Lab.DeleteAsync(state, ManifestTests.Example("webpod.yaml"), TextWriter.Null);
            Assert.DoesNotContain(state.Pods, p => p.Owner == "webpod");
            Assert.Equal(3, state.Pods.Count);
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }

        Assert.Empty(TestLab.Namespaces(o.Prefix));
        Assert.Empty(TestLab.ProcessesMentioning(o.LabDir));
        Assert.Empty(Directory.Exists(Lab.EtcNetns) ? Directory.GetDirectories(Lab.EtcNetns, o.Prefix + "*") : []);
        Assert.Equal(rootBefore, TestLab.RootLinks());
    }

    private static async Task<string> Exec(LabState state, string pod, params string[] command)
    {
        var (code, stdout, stderr) = await Lab.PodCaptureAsync(state, pod, command);
        Assert.True(code == 0, $"{string.Join(' ', command)} in {pod}: exit {code}\n{stdout}\n{stderr}");
        return stdout;
    }

    private static string Ip(LabPod pod) => pod.Ip!.Split('/')[0];

    private static string Regex(string text) => System.Text.RegularExpressions.Regex.Escape(text);
}
