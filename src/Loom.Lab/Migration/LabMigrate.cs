using System.Diagnostics;
using System.Globalization;
using System.Net;
using Loom.Core.AgentApi;
using Loom.Core.Migration;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Store;

namespace Loom.Lab.Migration;

/// <summary>What <c>loom lab migrate</c> runs.</summary>
public sealed record LabMigrateOptions
{
    /// <summary>Only this node (after <c>start</c> if the cluster is not migrating yet); no finalize.</summary>
    public string? Node { get; init; }

    public TimeSpan ProbeInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    public bool Finalize { get; init; } = true;

    /// <summary>The Service probed ("namespace/name"): the scenario's webpod.</summary>
    public string Service { get; init; } = "default/webpod";

    /// <summary>Run <c>migrate start</c> first when the cluster is not migrating (else: refused).</summary>
    public bool StartIfNeeded { get; init; } = true;

    /// <summary>The migration network; null: the scenario's (<see cref="MigrationStart.DefaultNetwork"/>).</summary>
    public Network? Network { get; init; }
}

/// <summary>
/// <c>loom lab migrate</c>: Cilium's migration guide from Flannel in the lab, under a probe. <c>start</c>; then each
/// node, workers first and the control plane last, through <see cref="NodeMigration"/> with <see cref="LabMigrationHost"/>;
/// then <c>finalize</c>, waiting until every agent runs the end state. Each step is printed with its time and what the
/// probe saw meanwhile; the run fails if any probe request failed or any node was rolled back.
/// </summary>
public static class LabMigrate
{
    private static readonly TimeSpan ConvergeTimeout = TimeSpan.FromSeconds(60);

    public static async Task<int> RunAsync(LabState state, LabMigrateOptions options, TextWriter output, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        if (options.Node is { } only)
        {
            _ = state.Node(only);
        }

        var store = await LabStore.OpenStoreAsync(state, ct).ConfigureAwait(false);
        await using (store.ConfigureAwait(false))
        {
            // Refusals before any probe starts.
            var record = await MigrationRecord.GetAsync(store, ct).ConfigureAwait(false);
            if (record is { IsFinalized: true } done)
            {
                if (options.Node is not null)
                {
                    throw new MigrationRefusedException($"the cluster already moved from {done.From} to {done.To}; no node is left to migrate");
                }

                await output.WriteLineAsync($"the cluster already moved from {done.From} to {done.To}; nothing to do").ConfigureAwait(false);
                return 0;
            }

            if (record is null && !options.StartIfNeeded)
            {
                throw new MigrationRefusedException("the cluster is not migrating: run 'loom migrate start' first");
            }

            var target = await TargetAsync(store, options.Service, ct).ConfigureAwait(false);
            var probe = new LabProbe(state, new ProbeTarget(target.ClusterIp, target.Dns, target.DnsName) { Interval = options.ProbeInterval },
                DateTimeOffset.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
            await using (probe.ConfigureAwait(false))
            {
                var run = new Run(state, store, probe, output);
                return await run.ExecuteAsync(target, options, ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary><c>migrate rollback NODE</c> on a lab node: every rollback step, host ones included (or the rest of an interrupted rollback).</summary>
    public static async Task<NodeMigrationResult> RollbackAsync(LabState state, string node, TextWriter output, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(output);
        _ = state.Node(node);
        var store = await LabStore.OpenStoreAsync(state, ct).ConfigureAwait(false);
        await using (store.ConfigureAwait(false))
        {
            var host = new LabMigrationHost(state, store, target: null, output);
            var rollback = new NodeMigration(store, host)
            {
                StepStarted = (_, step) => output.WriteLine($"  {MigrationPlan.Describe(step)}"),
            };
            return await rollback.RollbackAsync(node, "rollback on demand", ct).ConfigureAwait(false);
        }
    }

    private static async Task<MigrationTarget> TargetAsync(IStore store, string service, CancellationToken ct)
    {
        var svc = (await store.GetAsync(Kinds.Service, service, ct).ConfigureAwait(false))?.Value
            ?? throw new LabException($"service {service} is not in the lab: the probe needs it (apply the sample app first: loom lab apply -f examples/scenario/webpod.yaml)");
        var port = svc.Ports.FirstOrDefault(p => p.Protocol == Protocol.Tcp)
            ?? throw new LabException($"service {service} has no TCP port to probe");
        var dns = (await store.GetAsync(Kinds.Service, "kube-system/kube-dns", ct).ConfigureAwait(false))?.Value;
        return new MigrationTarget(service, new IPEndPoint(svc.ClusterIp, port.Port), $"{svc.Name}.{svc.Namespace}.svc.{Lab.ClusterDomain}",
            dns is null ? null : new IPEndPoint(dns.ClusterIp, 53));
    }

    private sealed class Run(LabState state, IStore store, LabProbe probe, TextWriter output)
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly List<string> _rolledBack = [];
        private readonly List<(string Step, DateTimeOffset From, DateTimeOffset To)> _windows = [];

        public async Task<int> ExecuteAsync(MigrationTarget target, LabMigrateOptions options, CancellationToken ct)
        {
            var began = DateTimeOffset.UtcNow;
            foreach (var n in state.Nodes)
            {
                probe.Start(n.Name);
            }

            await Line($"probe: every {options.ProbeInterval.TotalMilliseconds:0} ms from each node's host namespace: GET http://{target.ClusterIp}/ ({target.Service})"
                + (target.Dns is { } d ? $" and DNS {target.DnsName} @{d.Address}" : " (no kube-dns Service: no DNS probe)")).ConfigureAwait(false);
            await probe.WaitAnsweredAsync(began, TimeSpan.FromSeconds(15), ct).ConfigureAwait(false);

            var m = await MigrationRecord.GetAsync(store, ct).ConfigureAwait(false);
            if (m is null)
            {
                m = await Step("migrate start", async () =>
                {
                    var started = await MigrationStart.RunAsync(store, options.Network, TimeProvider.System, ct).ConfigureAwait(false);
                    await output.WriteLineAsync($"  network/{started.To} added beside network/{started.From}; nodeconfig/{ClusterMigration.NodeConfigName} selects {ClusterMigration.NodeLabel}={ClusterMigration.NodeLabelValue}")
                        .ConfigureAwait(false);
                    await WaitEveryAgentAsync($"network {started.To} ready", s => s.Networks.Any(n => n.Name == started.To && n.Ready), ct).ConfigureAwait(false);
                    return started;
                }).ConfigureAwait(false);
            }

            var host = new LabMigrationHost(state, store, target, new IndentedWriter(output))
            {
                BeforeReboot = node => probe.StopAsync(node),
                AfterReboot = async node =>
                {
                    var restarted = DateTimeOffset.UtcNow;
                    probe.Start(node);
                    await probe.WaitAnsweredAsync(restarted, TimeSpan.FromSeconds(15), ct, node).ConfigureAwait(false);
                },
            };
            var order = options.Node is { } one ? [one] : state.Nodes.Skip(1).Select(n => n.Name).Append(state.Nodes[0].Name).ToList();
            foreach (var node in order)
            {
                if (m.NodeState(node).Phase == NodeMigrationPhase.Migrated)
                {
                    await Line($"{node}: already migrated").ConfigureAwait(false);
                    continue;
                }

                if (!await NodeAsync(host, node, ct).ConfigureAwait(false))
                {
                    break;
                }
            }

            if (options.Finalize && options.Node is null && _rolledBack.Count == 0)
            {
                await FinalizeAsync(m, ct).ConfigureAwait(false);
            }

            // A last second of probing after the end state, then the totals.
            await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
            await probe.DisposeAsync().ConfigureAwait(false);
            return await SummaryAsync(began).ConfigureAwait(false);
        }

        private async Task<bool> NodeAsync(LabMigrationHost host, string node, CancellationToken ct)
        {
            var nodeBegan = DateTimeOffset.UtcNow;
            var stepBegan = nodeBegan;
            var sw = Stopwatch.StartNew();
            await Line($"{node}: migrating").ConfigureAwait(false);
            var migration = new NodeMigration(store, host)
            {
                StepStarted = (_, step) =>
                {
                    stepBegan = DateTimeOffset.UtcNow;
                    output.WriteLine($"{Stamp()}   {MigrationPlan.Describe(step)}");
                },
                StepDone = (n, step) => output.WriteLine(
                    $"{Stamp()}   done in {(DateTimeOffset.UtcNow - stepBegan).TotalSeconds:0.0} s; probe: {Count(stepBegan, DateTimeOffset.UtcNow, $"{n}: {NetworkYaml.Wire(step)}")}"),
            };
            var result = await migration.RunAsync(node, ct).ConfigureAwait(false);
            var verdict = result.Phase == NodeMigrationPhase.Migrated ? "migrated" : "ROLLED BACK: " + result.FailedCheck;
            await Line($"{node}: {verdict} in {sw.Elapsed.TotalSeconds:0.0} s; probe: {Count(nodeBegan, DateTimeOffset.UtcNow)}").ConfigureAwait(false);
            if (result.Phase != NodeMigrationPhase.Migrated)
            {
                _rolledBack.Add(node);
            }

            return result.Phase == NodeMigrationPhase.Migrated;
        }

        private async Task FinalizeAsync(ClusterMigration m, CancellationToken ct)
        {
            await Step("migrate finalize", async () =>
            {
                var began = DateTimeOffset.UtcNow;
                await MigrationFinalize.RunAsync(store, step =>
                {
                    output.WriteLine($"{Stamp()}   {MigrationFinalize.Describe(step, m)}; probe: {Count(began, DateTimeOffset.UtcNow, "finalize: " + NetworkYaml.Wire(step))}");
                    began = DateTimeOffset.UtcNow;
                }, (step, ct) => LabFinalizeWait.Applied(step, m) is { } applied ? WaitEveryAgentAsync(applied.What, applied.Ok, ct) : Task.CompletedTask, ct)
                    .ConfigureAwait(false);
                await WaitNoTunnelAsync(ct).ConfigureAwait(false);
                return true;
            }).ConfigureAwait(false);
        }

        /// <summary>
        /// The end state has no tunnel: an agent keeps the old VXLAN device a few seconds after the switch to native
        /// routing (packets a peer still tunnelled are received), then deletes it. Waits for that on every node.
        /// </summary>
        private async Task WaitNoTunnelAsync(CancellationToken ct)
        {
            var sw = Stopwatch.StartNew();
            while (true)
            {
                var left = state.Nodes.SelectMany(n =>
                {
                    using var ns = Loom.Linux.NetNs.Open(n.Netns);
                    using var nl = Loom.Linux.Netlink.OpenIn(ns);
                    return nl.LinkList().Where(l => l.Kind == "vxlan").Select(l => $"{n.Name} {l.Name}").ToList();
                }).ToList();
                if (left.Count == 0)
                {
                    await output.WriteLineAsync($"{Stamp()}   every node without a tunnel device ({sw.Elapsed.TotalSeconds:0.0} s)").ConfigureAwait(false);
                    return;
                }

                if (sw.Elapsed > ConvergeTimeout)
                {
                    throw new LabException($"tunnel devices left after {ConvergeTimeout.TotalSeconds:0} s: {string.Join(", ", left)}");
                }

                await Task.Delay(250, ct).ConfigureAwait(false);
            }
        }

        private async Task<T> Step<T>(string what, Func<Task<T>> action)
        {
            var began = DateTimeOffset.UtcNow;
            var sw = Stopwatch.StartNew();
            await Line(what).ConfigureAwait(false);
            var result = await action().ConfigureAwait(false);
            await Line($"{what}: done in {sw.Elapsed.TotalSeconds:0.0} s; probe: {Count(began, DateTimeOffset.UtcNow)}").ConfigureAwait(false);
            return result;
        }

        private async Task WaitEveryAgentAsync(string what, Func<AgentStatus, bool> ok, CancellationToken ct)
        {
            var took = await LabFinalizeWait.EveryAgentAsync(state, what, ok, ct).ConfigureAwait(false);
            await output.WriteLineAsync($"{Stamp()}   every node at {what} ({took.TotalSeconds:0.0} s)").ConfigureAwait(false);
        }

        /// <summary>The probe's results so far for requests started in [from, to); the summary counts again once every request has ended.</summary>
        private string Count(DateTimeOffset from, DateTimeOffset to, string? step = null)
        {
            probe.CheckRunning();
            if (step is not null)
            {
                _windows.Add((step, from, to));
            }

            var window = probe.Results().Where(r => r.Result.Started >= from && r.Result.Started < to).ToList();
            return string.Create(CultureInfo.InvariantCulture, $"{window.Count} requests, {window.Count(r => !r.Result.Ok)} failed");
        }

        private async Task<int> SummaryAsync(DateTimeOffset began)
        {
            var all = probe.Results().Where(r => r.Result.Started >= began).ToList();
            await output.WriteLineAsync().ConfigureAwait(false);
            await output.WriteLineAsync("Probe, per node (HTTP to the ClusterIP and DNS, from the node's host namespace):").ConfigureAwait(false);
            foreach (var group in all.GroupBy(r => r.Node).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                var backends = group.Where(r => r.Result is { Ok: true, Kind: "http" }).Select(r => r.Result.Detail).Distinct().Order(StringComparer.Ordinal);
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"  {group.Key}: {group.Count()} requests, {group.Count(r => !r.Result.Ok)} failed (answered by {string.Join(", ", backends)})")).ConfigureAwait(false);
            }

            var failed = all.Where(r => !r.Result.Ok).ToList();
            var slow = all.Count(r => r.Result.Ok && r.Result.Millis >= 1000);
            // Counted again now that every request has ended: one still waiting at a step's end counts in its step.
            foreach (var (step, from, to) in _windows)
            {
                var late = failed.Count(r => r.Result.Started >= from && r.Result.Started < to);
                if (late > 0)
                {
                    await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"  {step}: {late} failed")).ConfigureAwait(false);
                }
            }

            foreach (var f in failed.Take(10))
            {
                await output.WriteLineAsync($"  FAILED {f.Result.Started:HH:mm:ss.fff} {f.Node}: {f.Result.Detail}").ConfigureAwait(false);
            }

            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"Probe total: {all.Count} requests, {failed.Count} failed ({slow} answered after 1 s or more), in {_clock.Elapsed.TotalSeconds:0} s")).ConfigureAwait(false);
            if (_rolledBack.Count > 0)
            {
                await output.WriteLineAsync($"Rolled back: {string.Join(", ", _rolledBack)} (see loom migrate status)").ConfigureAwait(false);
            }

            return failed.Count == 0 && _rolledBack.Count == 0 ? 0 : 1;
        }

        private Task Line(string text) => output.WriteLineAsync($"{Stamp()} {text}");

        private string Stamp() => string.Create(CultureInfo.InvariantCulture, $"[{_clock.Elapsed.TotalSeconds,5:0.0}s]");
    }

    /// <summary>The host steps' own lines (kubectl-like output), indented under the step that printed them.</summary>
    private sealed class IndentedWriter(TextWriter inner) : TextWriter
    {
        public override System.Text.Encoding Encoding => inner.Encoding;

        public override void WriteLine(string? value) => inner.WriteLine("           " + value);

        public override Task WriteLineAsync(string? value) => inner.WriteLineAsync("           " + value);

        public override void Write(char value) => inner.Write(value);
    }
}
