using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Lab.Tests.Policy;
using Loom.Testing;
using Xunit.Abstractions;

namespace Loom.Lab.Tests.Flows;

/// <summary>
/// Issue 15's flows end to end: real connections between lab pods on two nodes, then <c>loom lab observe</c> (every
/// node's agent) shows the denied one with its reason, pods and identities, a forwarded one on both nodes, the
/// Service it went to, streams with --follow, and combines filters.
/// </summary>
[Collection(SequentialLab.Name)]
public sealed class ObserveTests(ITestOutputHelper output)
{
    private const string Pods = """
        apiVersion: v1
        kind: Namespace
        metadata:
          name: x
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: a, namespace: x, labels: {pod: a}}
        spec:
          nodeName: k8s-w1
          containers:
          - name: serve
            image: registry.k8s.io/e2e-test-images/agnhost:2.53
            command: ["/agnhost", "serve-hostname", "--tcp", "--http=false", "--port", "80"]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: b, namespace: x, labels: {pod: b}}
        spec:
          nodeName: k8s-w2
          containers:
          - name: serve
            image: registry.k8s.io/e2e-test-images/agnhost:2.53
            command: ["/agnhost", "serve-hostname", "--tcp", "--http=false", "--port", "80"]
            ports:
            - containerPort: 80
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: x}
        spec:
          selector: {pod: b}
          ports:
          - port: 8080
            targetPort: 80
        """;

    private const string DenyB = """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: deny-b, namespace: x}
        spec:
          podSelector: {matchLabels: {pod: b}}
          policyTypes: [Ingress]
        """;

    public static TheoryData<string> Clusters => ["flannel", "cilium"];

    [Theory]
    [MemberData(nameof(Clusters))]
    public async Task Observe_shows_drops_cross_node_flows_services_follows_and_filters(string cluster)
    {
        var c = NetworkCombination.For(cluster);
        var o = TestLab.Options(agents: true) with { Cluster = c.File, ServiceBackend = c.File.Cluster.ServiceBackend };
        string[] lab = ["lab", "--lab-dir", o.LabDir, "--prefix", o.Prefix];
        try
        {
            var state = await Lab.UpAsync(o, TextWriter.Null);
            var pods = new PolicyLab(state, output);
            await pods.ApplyAsync(Pods);
            var a = pods.Pod("x/a");
            var b = pods.Ip("x/b");
            await Until("x/a reaches x/b", async () => (await PolicyProbe.ConnectAsync(a.Netns, b, 80, ProtocolType.Tcp, TimeSpan.FromSeconds(1))).Connected);

            // Forwarded across nodes: from-endpoint on a's node, to-endpoint on b's.
            var forwarded = await ObserveUntilAsync(lab, fs => fs.Any(f => Node(f) == "k8s-w1" && Point(f) == "from-endpoint") && fs.Any(f => Node(f) == "k8s-w2" && Point(f) == "to-endpoint"),
                "--from-pod", "x/a", "--to-pod", "x/b", "--verdict", "FORWARDED");
            Assert.Contains(forwarded, f => Node(f) == "k8s-w1" && Point(f) == "from-endpoint");
            Assert.Contains(forwarded, f => Node(f) == "k8s-w2" && Point(f) == "to-endpoint");

            // A Service connection: its flows name the Service (the ClusterIP's before kube-proxy, the frontend of a translation on eBPF).
            var clusterIp = await ClusterIpAsync(state, "x/web");
            // An agent names Services from a directory it rebuilds every second: a connection right after the Service was
            // created may be read before its name is known, so a new connection is made on each try.
            var service = await ObserveUntilAsync(lab, async () =>
                    Assert.True((await PolicyProbe.ConnectAsync(a.Netns, clusterIp, 8080, ProtocolType.Tcp, TimeSpan.FromSeconds(3))).Connected, "x/a -> Service x/web"),
                fs => fs.Count > 0 && (c.File.Cluster.ServiceBackend != ServiceProxyMode.Ebpf || fs.Any(f => Type(f) == "translation")),
                "--to-service", "x/web");
            Assert.NotEmpty(service);
            Assert.All(service, f => Assert.Equal("web", f.GetProperty("destinationService").GetProperty("name").GetString()));
            if (c.File.Cluster.ServiceBackend == ServiceProxyMode.Ebpf)
            {
                Assert.Contains(service, f => Type(f) == "translation" && f.GetProperty("originalDestination").GetString() == $"{clusterIp}:8080"
                                              && f.GetProperty("destination").GetProperty("pod").GetString() == "b");
            }

            // Denied: the drop on b's node names the reason, both pods and their identities.
            await pods.ApplyAsync(DenyB);
            await Until("x/b isolated", async () => !(await PolicyProbe.ConnectAsync(a.Netns, b, 80, ProtocolType.Tcp, TimeSpan.FromSeconds(1))).Connected);
            var dropped = await ObserveUntilAsync(lab, fs => fs.Any(f => Type(f) == "drop" && Pod(f, "source") == "x/a" && Pod(f, "destination") == "x/b"),
                "--verdict", "DROPPED", "--last", "0");
            var drop = dropped.First(f => Type(f) == "drop" && Pod(f, "source") == "x/a" && Pod(f, "destination") == "x/b");
            Assert.Equal("POLICY_DENIED", drop.GetProperty("dropReason").GetString());
            Assert.Equal("k8s-w2", Node(drop));
            Assert.Equal("ingress", drop.GetProperty("trafficDirection").GetString());
            Assert.True(drop.GetProperty("source").GetProperty("identity").GetUInt32() >= 256);
            Assert.True(drop.GetProperty("destination").GetProperty("identity").GetUInt32() >= 256);
            Assert.Contains("k8s:pod=a", drop.GetProperty("source").GetProperty("labels").EnumerateArray().Select(l => l.GetString()));

            // Filters combine: in x, TCP, not DROPPED; --not on its own takes a namespace away.
            var combined = await ObserveAsync(lab, "--namespace", "x", "--protocol", "tcp", "--not", "--verdict", "DROPPED", "--last", "0");
            Assert.NotEmpty(combined);
            Assert.All(combined, f => Assert.NotEqual("DROPPED", f.GetProperty("verdict").GetString()));
            Assert.Empty(await ObserveAsync(lab, "--not", "--namespace", "x", "--pod", "x/a", "--last", "0"));
            Assert.Empty(await ObserveAsync(lab, "--not", "--namespace", "kube-system", "--namespace", "kube-system", "--last", "0"));

            // --follow streams what comes after it started.
            await FollowSeesAsync(lab, a.Netns, b);
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix, TextWriter.Null);
        }
    }

    [Fact]
    public async Task Bad_flags_are_refused_before_any_agent_is_asked()
    {
        foreach (var (args, message) in new (string[], string)[]
                 {
                     (["--verdict", "DENIED"], "--verdict \"DENIED\": not one of FORWARDED, DROPPED, TRANSLATED"),
                     (["--since", "yesterday"], "--since \"yesterday\""),
                     (["--drop-reason", "NOPE"], "--drop-reason \"NOPE\""),
                     (["--port", "99999"], "--port 99999"),
                     (["--not"], "--not at the end"),
                     (["--not", "--last", "3"], "--not --last"),
                     (["--since", "99999999d"], "--since \"99999999d\": at most 3650d back"),
                     (["--since", "10000000d"], "--since \"10000000d\": at most 3650d back"),
                     (["--to-service", "a/b/c"], "--to-service \"a/b/c\""),
                     (["--to-service", ""], "--to-service \"\""),
                     (["--follow", "-o", "table"], "-o table cannot --follow"),
                 })
        {
            var run = await CliScenarioTests.Loom(["observe", "--socket", "/nonexistent/agent.sock", .. args]);
            Assert.True(run.Code == 2, $"{string.Join(" ", args)}: {run}");
            Assert.Contains(message, run.Err, StringComparison.Ordinal);
        }
    }

    private async Task FollowSeesAsync(string[] lab, string netns, IPAddress b)
    {
        var psi = new ProcessStartInfo(Path.Combine(CniRunner.BinDir, "loom")) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in (string[])[.. lab, "observe", "--follow", "--last", "1", "-o", "json", "--from-pod", "x/a", "--port", "81"])
        {
            psi.ArgumentList.Add(arg);
        }

        using var follow = Process.Start(psi)!;
        try
        {
            var seen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            _ = Task.Run(async () =>
            {
                while (await follow.StandardOutput.ReadLineAsync() is { } line)
                {
                    if (line.Contains("\"port\":81", StringComparison.Ordinal))
                    {
                        seen.TrySetResult(line);
                    }
                }
            });
            await Task.Delay(1000);
            // Nothing serves 81 on b: the SYN is refused (a RST comes back), still a flow; repeated until --follow prints it.
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (!seen.Task.IsCompleted && DateTime.UtcNow < deadline)
            {
                await PolicyProbe.ConnectAsync(netns, b, 81, ProtocolType.Tcp, TimeSpan.FromMilliseconds(500));
                await Task.WhenAny(seen.Task, Task.Delay(500));
            }

            Assert.True(seen.Task.IsCompleted, "--follow printed no flow of the new connection within 20 s");
            output.WriteLine("followed: " + await seen.Task);
        }
        finally
        {
            if (!follow.HasExited)
            {
                using var interrupt = Process.Start("kill", ["-INT", follow.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
                await interrupt.WaitForExitAsync();
            }

            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await follow.WaitForExitAsync(cts.Token);
        }

        Assert.True(follow.ExitCode is 0 or 130, $"--follow after SIGINT: exit {follow.ExitCode}"); // 130: interrupted, as a shell reports it
    }

    /// <summary>
    /// The flows once <paramref name="done"/> holds, asked again for up to 5 s: an agent reads its ring every 250 ms, so a
    /// query right after the traffic may come before the node has read it. The last answer either way (asserts say why).
    /// </summary>
    private Task<List<JsonElement>> ObserveUntilAsync(string[] lab, Func<List<JsonElement>, bool> done, params string[] args) =>
        ObserveUntilAsync(lab, () => Task.CompletedTask, done, args);

    /// <summary>As above, running <paramref name="before"/> (new traffic) before each query.</summary>
    private async Task<List<JsonElement>> ObserveUntilAsync(string[] lab, Func<Task> before, Func<List<JsonElement>, bool> done, params string[] args)
    {
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (true)
        {
            await before();
            var flows = await ObserveAsync(lab, args);
            if (done(flows) || DateTime.UtcNow > deadline)
            {
                return flows;
            }

            await Task.Delay(300);
        }
    }

    private async Task<List<JsonElement>> ObserveAsync(string[] lab, params string[] args)
    {
        var run = await CliScenarioTests.Loom([.. lab, "observe", "-o", "json", .. args]);
        Assert.True(run.Code == 0, run.ToString());
        output.WriteLine($"observe {string.Join(" ", args)}: {run.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length} flow(s)");
        return [.. run.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone())];
    }

    private static async Task<IPAddress> ClusterIpAsync(LabState state, string key)
    {
        var store = await Lab.OpenStoreAsync(state);
        await using (store.ConfigureAwait(false))
        {
            return (await store.GetAsync(Kinds.Service, key))?.Value.ClusterIp ?? throw new InvalidOperationException($"no Service {key}");
        }
    }

    private static async Task Until(string what, Func<Task<bool>> check)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await check())
        {
            Assert.True(DateTime.UtcNow < deadline, $"{what}: not within 30 s");
            await Task.Delay(200);
        }
    }

    private static string? Node(JsonElement f) => f.GetProperty("node").GetString();

    private static string? Point(JsonElement f) => f.GetProperty("observationPoint").GetString();

    private static string? Type(JsonElement f) => f.GetProperty("type").GetString();

    private static string? Pod(JsonElement f, string side) =>
        f.GetProperty(side) is var p && p.TryGetProperty("pod", out var pod) ? $"{p.GetProperty("namespace").GetString()}/{pod.GetString()}" : null;
}
