using System.Diagnostics;
using System.Net;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Lab.Migration;
using Loom.Linux;

namespace Loom.Lab.Tests;

/// <summary>
/// Graceful drain (issue 13): a leaving pod is replaced, taken out of every node's Service rules, and only then
/// stopped, so a probe through the ClusterIP sees no failure; the cluster DNS's two replicas stay on two nodes.
/// </summary>
[Collection(SequentialLab.Name)]
public sealed class DrainTests
{
    [Fact]
    public async Task Draining_a_webpod_node_under_a_probe_loses_no_request_and_the_replicas_come_back_elsewhere()
    {
        // Four nodes: webpod's required anti-affinity needs a free worker for the drained replica.
        var o = TestLab.Options(nodes: 4, agents: true) with { ClusterDns = true };
        try
        {
            var state = await Lab.UpAsync(o, TextWriter.Null);
            var dns = state.Pods.Where(p => p.Owner == "coredns").ToList();
            Assert.Equal(2, dns.Count);
            Assert.NotEqual(dns[0].Node, dns[1].Node);
            // The probing pod first (k8s-w2), so one webpod lands beside a DNS replica and the drain moves both.
            var client = Lab.AddPod(state, "client", "k8s-w2");
            await Lab.ApplyAsync(state, ManifestTests.Example("webpod.yaml"), TextWriter.Null);
            var webpods = state.Pods.Where(p => p.Owner == "webpod").ToList();
            Assert.Equal(2, webpods.Count);
            var leaving = Assert.Single(webpods, w => dns.Any(d => d.Node == w.Node));
            var drained = leaving.Node;
            var staying = webpods.Single(w => w != leaving);
            var leavingDns = dns.Single(d => d.Node == drained);
            const string host = "k8s-ctr";
            var vip = await ClusterIpAsync(state, "default/webpod");

            // A drain the agents cannot confirm (one agent stopped, so it never answers) changes nothing but the cordon.
            // k8s-ctr's: no replacement goes there (tainted for webpod, a DNS replica already there), so no CNI ADD waits on it.
            var stopped = state.Node(host).AgentPid!.Value;
            Signal("STOP", stopped);
            var failed = new StringWriter();
            LabException error;
            try
            {
                error = await Assert.ThrowsAsync<LabException>(() => Lab.DrainAsync(state, drained, force: false, failed));
            }
            finally
            {
                Signal("CONT", stopped);
            }

            Assert.Contains("not applied by every node after 10 s", error.Message, StringComparison.Ordinal);
            Assert.Contains("does not answer", error.Message, StringComparison.Ordinal);
            state.Refresh();
            Assert.Equal(webpods.Select(p => p.Name).Order(StringComparer.Ordinal), state.Pods.Where(p => p.Owner == "webpod").Select(p => p.Name).Order(StringComparer.Ordinal));
            Assert.Equal(dns.Select(p => p.Name).Order(StringComparer.Ordinal), state.Pods.Where(p => p.Owner == "coredns").Select(p => p.Name).Order(StringComparer.Ordinal));
            Assert.Empty(state.Pending);
            Assert.All(await EndpointsAsync(state, webpods), e => Assert.True(e.Ready, e.Name));
            Assert.Contains("(drain of " + drained + " abandoned)", failed.ToString(), StringComparison.Ordinal);

            // The drain under probes: a new connection every 50 ms from a node's host namespace and from a pod on another node.
            using var hostNs = NetNs.Open(state.Node(host).Netns);
            using var podNs = NetNs.Open(client.Netns);
            using var probing = new CancellationTokenSource();
            var fromHost = HttpProbeAsync(hostNs, vip, probing.Token);
            var fromPod = HttpProbeAsync(podNs, vip, probing.Token);
            var output = new StringWriter();
            var clock = Stopwatch.StartNew();
            try
            {
                await Task.Delay(1000);
                await Lab.DrainAsync(state, drained, force: false, output);
                await Task.Delay(1500);
            }
            finally
            {
                await probing.CancelAsync();
            }

            var (hostOk, hostFailed, hostSeen, hostErrors) = await fromHost;
            var (podOk, podFailed, podSeen, podErrors) = await fromPod;
            var text = output.ToString();
            Assert.True(hostFailed == 0, $"from {host}'s host namespace: {hostOk} ok, {hostFailed} failed\n{string.Join('\n', hostErrors)}\n{text}");
            Assert.True(podFailed == 0, $"from pod client on {client.Node}: {podOk} ok, {podFailed} failed\n{string.Join('\n', podErrors)}\n{text}");
            Assert.True(hostOk > 20 && podOk > 20, $"{hostOk} and {podOk} requests in {clock.Elapsed}");

            // kubectl's lines; the drained node is empty; both Deployments are back at two replicas elsewhere.
            Assert.Contains($"node/{drained} cordoned", failed.ToString(), StringComparison.Ordinal);
            Assert.Contains($"evicting pod default/{leaving.Name}", text, StringComparison.Ordinal);
            Assert.Contains($"evicting pod kube-system/{leavingDns.Name}", text, StringComparison.Ordinal);
            Assert.Contains($"pod/{leaving.Name} evicted", text, StringComparison.Ordinal);
            Assert.Contains($"pod/{leavingDns.Name} evicted", text, StringComparison.Ordinal);
            Assert.EndsWith($"node/{drained} drained\n", text, StringComparison.Ordinal);
            state.Refresh();
            Assert.DoesNotContain(state.Pods, p => p.Node == drained);
            Assert.Empty(state.Pending);
            var after = state.Pods.Where(p => p.Owner == "webpod").ToList();
            Assert.Equal(2, after.Count);
            Assert.Equal(2, after.Select(p => p.Node).Distinct().Count());
            var dnsAfter = state.Pods.Where(p => p.Owner == "coredns").ToList();
            Assert.Equal(2, dnsAfter.Count);
            Assert.Equal(2, dnsAfter.Select(p => p.Node).Distinct().Count());
            Assert.DoesNotContain(dnsAfter, p => p.Name == leavingDns.Name);

            // The probes were answered by the replica that left, then by its replacement.
            var replacement = after.Single(p => p.Name != staying.Name);
            Assert.Contains(leaving.Name, hostSeen.Concat(podSeen));
            Assert.Contains(replacement.Name, hostSeen.Concat(podSeen));
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }

        Assert.Empty(TestLab.Namespaces(o.Prefix));
    }

    [Fact]
    public async Task A_one_node_lab_runs_both_dns_replicas_on_its_node()
    {
        var o = TestLab.Options(nodes: 1, agents: true) with { ClusterDns = true };
        try
        {
            var log = new StringWriter();
            var state = await Lab.UpAsync(o, log);
            Assert.Empty(state.Pending);
            var dns = state.Pods.Where(p => p.Owner == "coredns").ToList();
            Assert.Equal(2, dns.Count);
            Assert.All(dns, p => Assert.Equal("k8s-ctr", p.Node));
            Assert.Contains($"cluster DNS: pod kube-system/{dns.OrderBy(p => p.Node, StringComparer.Ordinal).First().Name} on k8s-ctr", log.ToString(), StringComparison.Ordinal);
            Assert.DoesNotContain("Pending", log.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }
    }

    private static void Signal(string signal, int pid)
    {
        using var kill = Process.Start("kill", ["-" + signal, pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }

    internal static async Task<IPEndPoint> ClusterIpAsync(LabState state, string key)
    {
        var store = await Lab.OpenStoreAsync(state);
        await using (store)
        {
            var svc = await store.GetAsync(Kinds.Service, key);
            Assert.NotNull(svc);
            return new IPEndPoint(svc.Value.ClusterIp, svc.Value.Ports[0].Port);
        }
    }

    private static async Task<List<Endpoint>> EndpointsAsync(LabState state, IEnumerable<LabPod> pods)
    {
        var store = await Lab.OpenStoreAsync(state);
        await using (store)
        {
            var found = new List<Endpoint>();
            foreach (var p in pods)
            {
                var e = await store.GetAsync(Kinds.Endpoint, ObjectKey.Of(p.Namespace, p.Name));
                Assert.NotNull(e);
                found.Add(e.Value);
            }

            return found;
        }
    }

    /// <summary>
    /// An HTTP/1.0 GET on a new connection every 50 ms until cancelled: counts answers and failures, and collects
    /// the whoami hostnames that answered. A request counts as failed only if it never completes (5 s).
    /// </summary>
    internal static async Task<(int Ok, int Failed, HashSet<string> Seen, List<string> Errors)> HttpProbeAsync(NetNsHandle ns, IPEndPoint target, CancellationToken ct)
    {
        int ok = 0, failed = 0;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var errors = new List<string>();
        while (!ct.IsCancellationRequested)
        {
            var started = DateTime.UtcNow;
            try
            {
                seen.Add(await ProbeRequests.HttpGetAsync(() => NetNs.Run(ns, ProbeRequests.Tcp), target, TimeSpan.FromSeconds(5), CancellationToken.None));
                ok++;
            }
            catch (ProbeException e)
            {
                failed++;
                errors.Add($"{started:HH:mm:ss.fff} {e.Message}");
            }

            await Task.Delay(50, CancellationToken.None);
        }

        return (ok, failed, seen, errors);
    }
}
