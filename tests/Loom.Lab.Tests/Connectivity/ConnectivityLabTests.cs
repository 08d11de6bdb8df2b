using System.Diagnostics;
using System.Globalization;
using System.Text;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Lab.Connectivity;
using Loom.Testing;
using Xunit.Abstractions;

namespace Loom.Lab.Tests.Connectivity;

/// <summary>
/// `loom lab connectivity test` on the Flannel-style (VXLAN, iptables Services) and the Cilium-style (routed, eBPF)
/// labs: it passes, fails naming the right tests when the tunnel's port is dropped on one node, selects with --test, reaches a
/// target on the underlay, sees policy drops in the flow log,
/// and leaves nothing in its namespace, also after a cancelled run and over a previous run's leftovers.
/// </summary>
[Collection(SequentialLab.Name)]
public sealed class ConnectivityLabTests(ITestOutputHelper output)
{
    private const string Ns = ConnectivityDeployment.Namespace;

    public static TheoryData<string> Clusters => ["flannel", "cilium"];

    [Theory]
    [MemberData(nameof(Clusters))]
    public async Task The_connectivity_test_passes_and_removes_what_it_deployed(string cluster)
    {
        var c = NetworkCombination.For(cluster);
        var o = TestLab.Options(agents: true) with { Cluster = c.File, ServiceBackend = c.File.Cluster.ServiceBackend, ClusterDns = true };
        try
        {
            var state = await Lab.UpAsync(o, TextWriter.Null);
            // A killed run's leftover: a deny-all that would fail every test if the next run kept it.
            await Lab.ApplyAsync(state, $"""
                apiVersion: v1
                kind: Namespace
                metadata:
                  name: {Ns}
                ---
                {Policy.NetworkPolicyTests.Policy(Ns, "leftover-deny-all", "podSelector: {}", "policyTypes: [Ingress, Egress]")}
                """, TextWriter.Null);

            var (report, text) = await RunAsync(state, new ConnectivityOptions());
            Assert.Contains("removed what a previous run left: networkpolicy/leftover-deny-all, namespace/" + Ns, text, StringComparison.Ordinal);
            Assert.True(report.Success, text);
            Assert.All(report.Tests, t => Assert.Equal(TestOutcome.Passed, t.Outcome));
            // nodeport: client -> every node's node port of echo-same-node, and the underlay router -> echo-other-node's.
            Assert.Equal(2 * state.Nodes.Count, report.Test("nodeport")!.Actions.Count);
            // Every action of the other tests was checked in the flow log: one check per connection.
            var connections = report.Tests.Where(t => t.Name != "no-unexpected-drops").Sum(t => t.Actions.Count);
            Assert.Equal(connections, report.Test("no-unexpected-drops")!.Actions.Count);
            Assert.Contains($"✅ All 13 tests ({connections * 2} actions) successful", text, StringComparison.Ordinal);
            await AssertNothingLeftAsync(state);
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix, TextWriter.Null);
        }
    }

    [Fact]
    public async Task The_tunnel_port_dropped_on_one_node_fails_the_other_node_tests_only()
    {
        var c = NetworkCombination.For("flannel");
        var o = TestLab.Options(agents: true) with { Cluster = c.File, ServiceBackend = c.File.Cluster.ServiceBackend, ClusterDns = true };
        try
        {
            var state = await Lab.UpAsync(o, TextWriter.Null);
            var select = new ConnectivityOptions { Selection = ConnectivitySelection.Parse(["pod-to-pod", "pod-to-service", "!pod-to-service-same-node"]) };
            var deployment = ConnectivityDeployment.For(state);
            var faulty = state.Node(deployment.OtherNode).Netns;
            await Nft(faulty, "add table inet loom-fault { chain in { type filter hook input priority -300; udp dport 8472 drop; }; }");
            try
            {
                var (report, text) = await RunAsync(state, select);
                Assert.False(report.Success, text);
                Assert.Equal(["pod-to-pod-same-node", "pod-to-pod-other-node", "pod-to-service-other-node"], report.Tests.Select(t => t.Name));
                Assert.Equal(TestOutcome.Passed, report.Test("pod-to-pod-same-node")!.Outcome);
                Assert.Equal(TestOutcome.Failed, report.Test("pod-to-pod-other-node")!.Outcome);
                Assert.Equal(TestOutcome.Failed, report.Test("pod-to-service-other-node")!.Outcome);
                Assert.Contains("❌ 2/3 tests failed (4/6 actions)", text, StringComparison.Ordinal);
                Assert.Contains("Test [pod-to-pod-other-node]:\n  ❌ client -> echo-other-node", text, StringComparison.Ordinal);
                Assert.Contains("curl: (28)", text, StringComparison.Ordinal);
                Assert.DoesNotContain("Test [pod-to-pod-same-node]", text, StringComparison.Ordinal);
                await AssertNothingLeftAsync(state);
            }
            finally
            {
                await Nft(faulty, "delete table inet loom-fault");
            }

            // Healed; and pod-to-world against a server on the lab's underlay (the only "world" there is).
            await using (var world = ExternalServer.Start(state))
            {
                var (healed, healedText) = await RunAsync(state, select with
                {
                    Selection = ConnectivitySelection.Parse(["pod-to-pod", "pod-to-service", "!pod-to-service-same-node", "pod-to-world"]),
                    ExternalTarget = world.Endpoint,
                });
                Assert.True(healed.Success, healedText);
                Assert.Equal(2, healed.Test("pod-to-world")!.Actions.Count);
                Assert.Contains("✅ All 4 tests (8 actions) successful", healedText, StringComparison.Ordinal);
            }

            // policyEnforcementMode always on the other echo's node: its pod is denied by policy, and the flow log shows it.
            var policy = new Policy.PolicyLab(state, output);
            await policy.SetModeAsync(PolicyEnforcementMode.Always, deployment.OtherNode);
            try
            {
                var (denied, deniedText) = await RunAsync(state, new ConnectivityOptions { Selection = ConnectivitySelection.Parse(["pod-to-pod", "no-unexpected-drops"]) });
                Assert.Equal(TestOutcome.Passed, denied.Test("pod-to-pod-same-node")!.Outcome);
                Assert.Equal(TestOutcome.Failed, denied.Test("pod-to-pod-other-node")!.Outcome);
                var drops = denied.Test("no-unexpected-drops")!;
                Assert.Equal(TestOutcome.Failed, drops.Outcome);
                Assert.Equal(["pod-to-pod-other-node: client -> ", "pod-to-pod-other-node: client2 -> "],
                    drops.Actions.Where(a => !a.Passed).Select(a => a.Action.Name[..(a.Action.Name.IndexOf("->", StringComparison.Ordinal) + 3)]));
                Assert.Contains("no drop: the flow log disagrees", deniedText, StringComparison.Ordinal);
                Assert.Contains("POLICY_DENIED", deniedText, StringComparison.Ordinal);
            }
            finally
            {
                await policy.ClearNodeModeAsync(deployment.OtherNode);
            }

            // Cancelled while it deploys or runs (Ctrl-C): it stops, and still removes everything.
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(3));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => ConnectivityTest.RunAsync(state, new ConnectivityOptions(), TextWriter.Null, cts.Token));
            await AssertNothingLeftAsync(state);

            // The CLI interrupted by Ctrl-C (SIGINT) once its first test has run: it removes everything before it exits.
            var (code, cli) = await InterruptedCliAsync(o.LabDir, "✅ [1/");
            output.WriteLine(cli);
            Assert.NotEqual(0, code);
            Assert.Contains("🧹 removed 7 objects", cli, StringComparison.Ordinal);
            await AssertNothingLeftAsync(state);
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix, TextWriter.Null);
        }
    }

    private async Task<(ConnectivityReport Report, string Text)> RunAsync(LabState state, ConnectivityOptions options)
    {
        var sw = new StringWriter();
        var report = await ConnectivityTest.RunAsync(state, options, sw);
        output.WriteLine(sw.ToString());
        return (report, sw.ToString());
    }

    private static async Task AssertNothingLeftAsync(LabState state)
    {
        state.Refresh();
        Assert.DoesNotContain(state.Pods, p => p.Namespace == Ns);
        Assert.DoesNotContain(state.Pending, p => p.Namespace == Ns);
        Assert.DoesNotContain(state.Services, s => s.Namespace == Ns);
        Assert.DoesNotContain(TestLab.Namespaces(state.Prefix), n => n.Contains(Ns, StringComparison.Ordinal));
        var store = await Lab.OpenStoreAsync(state);
        await using (store)
        {
            Assert.DoesNotContain((await store.ListAsync(Kinds.Service)).Items, s => s.Value.Namespace == Ns);
            Assert.DoesNotContain((await store.ListAsync(Kinds.NetworkPolicy)).Items, p => p.Value.Namespace == Ns);
            Assert.DoesNotContain((await store.ListAsync(Kinds.Endpoint)).Items, e => e.Value.Namespace == Ns);
            Assert.Null(await store.GetAsync(Kinds.Namespace, Ns));
        }
    }

    private static async Task<(int Code, string Output)> InterruptedCliAsync(string labDir, string after)
    {
        var psi = new ProcessStartInfo(Path.Combine(CniRunner.BinDir, "loom")) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "lab", "--lab-dir", labDir, "connectivity", "test" })
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var text = new StringBuilder();
        var seen = new TaskCompletionSource();
        p.OutputDataReceived += (_, e) =>
        {
            lock (text)
            {
                text.AppendLine(e.Data);
            }

            if (e.Data?.Contains(after, StringComparison.Ordinal) == true)
            {
                seen.TrySetResult();
            }
        };
        p.ErrorDataReceived += (_, e) =>
        {
            lock (text)
            {
                text.AppendLine(e.Data);
            }
        };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        await seen.Task.WaitAsync(TimeSpan.FromSeconds(90));
        using (var kill = Process.Start("kill", ["-INT", p.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await p.WaitForExitAsync(cts.Token);
        lock (text)
        {
            return (p.ExitCode, text.ToString());
        }
    }

    private static async Task Nft(string netns, string rules)
    {
        var (code, stdout, stderr) = await LabProcesses.CaptureAsync(netns, ["nft", rules]);
        Assert.True(code == 0, $"nft {rules}: {stdout}{stderr}");
    }
}
