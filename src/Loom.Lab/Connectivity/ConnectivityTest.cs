using System.Diagnostics;
using System.Net;
using Loom.Core.Model;
using Loom.Core.Store;

namespace Loom.Lab.Connectivity;

/// <summary>What to run: the selection, an optional target inside the lab for pod-to-world, how long a policy may take to land.</summary>
public sealed record ConnectivityOptions
{
    public ConnectivitySelection Selection { get; init; } = ConnectivitySelection.All;

    /// <summary>An address inside the lab (e.g. on its underlay); port 0: ping only. Null: no pod-to-world test.</summary>
    public IPEndPoint? ExternalTarget { get; init; }

    /// <summary>How long an action of a policy test is retried until it behaves as the policy says (agents apply it within a moment).</summary>
    public TimeSpan PolicyConvergence { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// <c>loom lab connectivity test</c>: deploys the test's pods and Services (<see cref="ConnectivityDeployment"/>), runs
/// the selected scenarios with a line each, prints Cilium's summary, and removes everything it deployed whatever
/// happens (an error, a failed test, cancellation).
/// </summary>
public static class ConnectivityTest
{
    /// <summary>Every test's name and group, in the order they run.</summary>
    public static IReadOnlyList<(string Name, string Group)> Tests(bool world) => [.. ConnectivityScenarios.All(world).Select(s => (s.Name, s.Group))];

    public static async Task<ConnectivityReport> RunAsync(LabState state, ConnectivityOptions options, TextWriter output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        var scenarios = ConnectivityScenarios.All(options.ExternalTarget is not null);
        if (options.Selection.Unknown(scenarios.Select(s => (s.Name, s.Group))) is { Count: > 0 } unknown)
        {
            throw new LabException($"--test {string.Join(", ", unknown)}: no such test (tests: {string.Join(", ", scenarios.Select(s => s.Name))})");
        }

        var selected = scenarios.Where(s => options.Selection.Selects(s.Name, s.Group)).ToList();
        if (selected.Count == 0)
        {
            throw new LabException("--test: the selection leaves no test to run");
        }

        var deployment = ConnectivityDeployment.For(state);
        await output.WriteLineAsync($"ℹ️  deploying to namespace {ConnectivityDeployment.Namespace} (client on {deployment.ClientNode}, echo-other-node on {deployment.OtherNode})")
            .ConfigureAwait(false);
        try
        {
            await deployment.DeployAsync(state, output, cancellationToken).ConfigureAwait(false);
            var context = await ContextAsync(state, options, cancellationToken).ConfigureAwait(false);
            if (selected.Exists(s => s.Name == ConnectivityScenarios.NoUnexpectedDrops))
            {
                var (flows, off) = await ConnectivityFlows.OpenAsync(state, cancellationToken).ConfigureAwait(false);
                context = context with { Flows = flows, FlowsUnavailable = off is null ? null : "no flow log to check: " + off };
            }

            if (context.PolicySkipReason is null && await ModeAsync(state, context.Client.Node, cancellationToken).ConfigureAwait(false) == PolicyEnforcementMode.Always)
            {
                await output.WriteLineAsync("⚠️  policyEnforcementMode is always: without a policy allowing them, the no-policies connections are denied").ConfigureAwait(false);
            }

            var results = new List<TestResult>();
            var flowChecks = new List<ActionResult>();
            var run = new ScenarioRun(context, options, flowChecks);
            foreach (var scenario in selected)
            {
                var result = scenario.Name == ConnectivityScenarios.NoUnexpectedDrops && scenario.SkipReason(context) is null
                    ? flowChecks.Count == 0 ? TestResult.Skipped(scenario.Name, "no action ran to check the flows of") : TestResult.Ran(scenario.Name, flowChecks)
                    : await run.RunAsync(scenario, cancellationToken).ConfigureAwait(false);
                results.Add(result);
                await output.WriteLineAsync(ConnectivitySummary.TestLine(result, results.Count, selected.Count)).ConfigureAwait(false);
            }

            var report = new ConnectivityReport(results);
            await output.WriteLineAsync().ConfigureAwait(false);
            await output.WriteAsync(ConnectivitySummary.Summary(report)).ConfigureAwait(false);
            return report;
        }
        finally
        {
            // Also after Ctrl-C: the cleanup must not be cancelled with the run.
            if (cancellationToken.IsCancellationRequested)
            {
                await output.WriteLineAsync("⚠️  interrupted: removing what the test deployed").ConfigureAwait(false);
            }

            var removed = await ConnectivityDeployment.RemoveAsync(state, CancellationToken.None).ConfigureAwait(false);
            await output.WriteLineAsync($"🧹 removed {removed.Count} objects from namespace {ConnectivityDeployment.Namespace}").ConfigureAwait(false);
        }
    }

    internal static async Task<ActionResult> RunActionAsync(LabState state, ConnectivityAction action, CancellationToken ct)
    {
        var (code, stdout, stderr) = action.Where == ConnectivityScenarios.Outside
            ? await LabProcesses.CaptureAsync(state.UnderlayNetns, action.Command, ct).ConfigureAwait(false)
            : action.Where.StartsWith("node ", StringComparison.Ordinal)
            ? await LabProcesses.CaptureAsync(state.Node(action.Where[5..]).Netns, action.Command, ct).ConfigureAwait(false)
            : await LabPods.PodCaptureAsync(state, ConnectivityDeployment.Namespace, action.Where[(action.Where.IndexOf('/', StringComparison.Ordinal) + 1)..], null,
                action.Command, ct).ConfigureAwait(false);
        return new ActionResult(action, code, (stdout.TrimEnd() + "\n" + stderr.TrimEnd()).Trim());
    }

    private static async Task<ConnectivityContext> ContextAsync(LabState state, ConnectivityOptions options, CancellationToken ct)
    {
        state.Refresh();
        LabPod Pod(string name) => state.Pod(ConnectivityDeployment.Namespace, name) ?? throw new LabException($"pod {ConnectivityDeployment.Namespace}/{name} is gone");
        var (client, client2, same, other) = (Pod("client"), Pod("client2"), Pod("echo-same-node"), Pod("echo-other-node"));
        var store = await LabStore.OpenStoreAsync(state, ct).ConfigureAwait(false);
        await using (store.ConfigureAwait(false))
        {
            var (services, _) = await store.ListValidAsync(Kinds.Service, (_, _) => { }, ct).ConfigureAwait(false);
            var echoServices = services.Select(s => s.Value).Where(s => s.Namespace == ConnectivityDeployment.Namespace).ToList();
            var ips = echoServices.ToDictionary(s => s.Name, s => s.ClusterIp, StringComparer.Ordinal);
            var nodePorts = echoServices.Where(s => s.Type != ServiceType.ClusterIP && s.Ports.Count > 0 && s.Ports[0].NodePort != 0)
                .ToDictionary(s => s.Name, s => s.Ports[0].NodePort, StringComparer.Ordinal);
            var dns = services.Any(s => s.Value.Namespace == "kube-system" && s.Value.Name == "kube-dns");
            string? policySkip = null;
            foreach (var node in new[] { client.Node, other.Node }.Distinct(StringComparer.Ordinal))
            {
                if (await ModeAsync(state, node, ct).ConfigureAwait(false) == PolicyEnforcementMode.Never)
                {
                    policySkip = $"policyEnforcementMode is never on {node} (`loom policy mode default` to enforce policies)";
                    break;
                }
            }

            return new ConnectivityContext(state, client, client2, same, other, ips, policySkip, dns, options.ExternalTarget) { NodePorts = nodePorts };
        }
    }

    /// <summary>The node's policyEnforcementMode, as its agent reads it: its NodeConfig's override, else the cluster's.</summary>
    private static async Task<PolicyEnforcementMode> ModeAsync(LabState state, string node, CancellationToken ct)
    {
        var store = await LabStore.OpenStoreAsync(state, ct).ConfigureAwait(false);
        await using (store.ConfigureAwait(false))
        {
            var nodeConfig = await store.GetAsync(Kinds.NodeConfig, node, ct).ConfigureAwait(false);
            var cluster = await store.GetAsync(Kinds.ClusterConfig, "cluster", ct).ConfigureAwait(false);
            return nodeConfig?.Value.PolicyEnforcementMode ?? cluster?.Value.PolicyEnforcementMode ?? PolicyEnforcementMode.Default;
        }
    }

    /// <summary>Per node, how many local endpoints its agent isolates for ingress and for egress (programmed, not just stored).</summary>
    private static async Task<Dictionary<string, (int Ingress, int Egress)>> EnforcementAsync(LabState state, CancellationToken ct)
    {
        var counts = new Dictionary<string, (int, int)>(StringComparer.Ordinal);
        foreach (var node in state.Nodes)
        {
            var (response, _) = await LabAgents.AskAsync(state, node.Name, "status", TimeSpan.FromSeconds(2), ct).ConfigureAwait(false);
            if (response?.Status is { } status)
            {
                counts[node.Name] = (status.PolicyIngressEnforced, status.PolicyEgressEnforced);
            }
        }

        return counts;
    }

    /// <summary>Waits (at most <paramref name="within"/>) until every agent isolates as many endpoints as in <paramref name="before"/>.</summary>
    private static async Task UntilEnforcementAsync(LabState state, Dictionary<string, (int Ingress, int Egress)> before, TimeSpan within, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < within)
        {
            var now = await EnforcementAsync(state, ct).ConfigureAwait(false);
            if (before.All(b => now.TryGetValue(b.Key, out var n) && n == b.Value))
            {
                return;
            }

            await Task.Delay(100, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Runs scenarios' actions; with a flow log, each action's final attempt is also checked there (into <paramref name="flowChecks"/>).</summary>
    private sealed class ScenarioRun(ConnectivityContext c, ConnectivityOptions options, List<ActionResult> flowChecks)
    {
        public async Task<TestResult> RunAsync(ConnectivityScenario scenario, CancellationToken ct)
        {
            if (scenario.SkipReason(c) is { } reason)
            {
                return TestResult.Skipped(scenario.Name, reason);
            }

            var results = new List<ActionResult>();
            if (scenario.Policy is not { } policy)
            {
                foreach (var a in scenario.Actions(c))
                {
                    results.Add(await AttemptsAsync(scenario.Name, a, TimeSpan.Zero, ct).ConfigureAwait(false));
                }

                return TestResult.Ran(scenario.Name, results);
            }

            var before = await EnforcementAsync(c.State, ct).ConfigureAwait(false);
            await LabApi.ApplyAsync(c.State, policy, TextWriter.Null, ct).ConfigureAwait(false);
            try
            {
                foreach (var a in scenario.Actions(c))
                {
                    results.Add(await AttemptsAsync(scenario.Name, a, options.PolicyConvergence, ct).ConfigureAwait(false));
                }
            }
            finally
            {
                await LabApi.DeleteAsync(c.State, policy, TextWriter.Null, CancellationToken.None).ConfigureAwait(false);
            }

            // The restored connections must not race the removal: a SYN sent before a node's pass has taken the policy
            // out is dropped (and shows in the flow log) even though the retransmission gets through.
            await UntilEnforcementAsync(c.State, before, options.PolicyConvergence, ct).ConfigureAwait(false);
            foreach (var a in ConnectivityScenarios.Restored(c))
            {
                results.Add(await AttemptsAsync(scenario.Name, a, options.PolicyConvergence, ct).ConfigureAwait(false));
            }

            return TestResult.Ran(scenario.Name, results);
        }

        /// <summary>
        /// Runs the action, again until it does what is expected or <paramref name="within"/> has passed (a policy
        /// reaches every node within a moment); the flows of the last attempt are checked.
        /// </summary>
        private async Task<ActionResult> AttemptsAsync(string test, ConnectivityAction action, TimeSpan within, CancellationToken ct)
        {
            var deadline = Stopwatch.StartNew();
            while (true)
            {
                var mark = c.Flows is { } flows ? await flows.MarkAsync(ct).ConfigureAwait(false) : default;
                var r = await RunActionAsync(c.State, action, ct).ConfigureAwait(false);
                if (r.Passed || deadline.Elapsed >= within)
                {
                    if (c.Flows is { } f && action.FlowPeers.Count > 0)
                    {
                        flowChecks.Add(mark.Error is { } error
                            ? new ActionResult(ConnectivityFlows.Check(test, action), 1, error)
                            : await f.CheckAsync(test, action, mark.Seq, ct).ConfigureAwait(false));
                    }

                    return r;
                }

                await Task.Delay(250, ct).ConfigureAwait(false);
            }
        }
    }
}
