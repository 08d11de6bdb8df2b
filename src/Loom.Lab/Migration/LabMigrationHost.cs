using System.Diagnostics;
using System.Net;
using Loom.Core.AgentApi;
using Loom.Core.Cni;
using Loom.Core.Migration;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Linux;

namespace Loom.Lab.Migration;

/// <summary>
/// <c>migrate node</c>'s host steps on a lab node: kubectl's cordon and drain, the agent restarted as systemd would,
/// a "reboot" (<see cref="LabNodeReboot"/>), and the verification a person would run after it. Every step is safe to
/// repeat: a resumed migration runs the interrupted step again.
/// </summary>
internal sealed class LabMigrationHost(LabState state, IStore store, MigrationTarget? target, TextWriter output) : INodeMigrationHost
{
    private static readonly TimeSpan AgentReadyTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Runs around a node's reboot: its probe stops with the node's processes and starts again after.</summary>
    public Func<string, Task>? BeforeReboot { get; init; }

    public Func<string, Task>? AfterReboot { get; init; }

    public static string TestPodName(string node) => "loom-migrate-check-" + node;

    public Task CordonAsync(string node, CancellationToken cancellationToken) =>
        LabNodeControl.CordonAsync(state, node, true, output, cancellationToken);

    // As kubectl drain --force: a bare pod (a left-over test pod) goes too; a Deployment's pods are recreated elsewhere.
    public Task DrainAsync(string node, CancellationToken cancellationToken) =>
        LabNodeControl.DrainAsync(state, node, force: true, output, cancellationToken);

    public async Task RestartAgentAsync(string node, CancellationToken cancellationToken)
    {
        await StopAgentAsync(node).ConfigureAwait(false);
        LabAgents.RestartAgent(state, node);
        await WaitAgentReadyAsync(node, cancellationToken).ConfigureAwait(false);
    }

    public async Task RebootAsync(string node, CancellationToken cancellationToken)
    {
        if (BeforeReboot is { } before)
        {
            await before(node).ConfigureAwait(false);
        }

        await StopAgentAsync(node).ConfigureAwait(false);
        await LabNodeReboot.RunAsync(state, node, output).ConfigureAwait(false);
        LabAgents.RestartAgent(state, node);
        await WaitAgentReadyAsync(node, cancellationToken).ConfigureAwait(false);
        if (AfterReboot is { } after)
        {
            await after(node).ConfigureAwait(false);
        }
    }

    /// <summary>The checks; a test pod that passed them goes (one that failed stays for a look until the rollback's last step).</summary>
    public async Task<string?> VerifyAsync(string node, string network, CancellationToken cancellationToken)
    {
        if (target is null)
        {
            return "verify: no Service to check the node against";
        }

        var failed = await new LabNodeVerification(state, store, target, output).RunAsync(node, network, TestPodName(node), cancellationToken).ConfigureAwait(false);
        if (failed is null)
        {
            await DeleteTestPodAsync(node, cancellationToken).ConfigureAwait(false);
        }

        return failed;
    }

    public Task UncordonAsync(string node, CancellationToken cancellationToken) =>
        LabNodeControl.CordonAsync(state, node, false, output, cancellationToken);

    /// <summary>The old network's conflist back from its <c>.loom_bak</c>, the new network's removed, before the agent restarts.</summary>
    public async Task RestoreCniConfigAsync(string node, CancellationToken cancellationToken)
    {
        var m = await MigrationRecord.ActiveAsync(store, cancellationToken).ConfigureAwait(false);
        var to = (await store.GetAsync(Kinds.Network, m.To, cancellationToken).ConfigureAwait(false))?.Value;
        var dir = state.CniConfDir(node);
        if (to is not null)
        {
            var name = to.Plumbing == Plumbing.Routed ? NetConf.RoutedConflistName : NetConf.LoomConflistName;
            var from = (await store.GetAsync(Kinds.Network, m.From, cancellationToken).ConfigureAwait(false))?.Value;
            var fromName = from?.Plumbing == Plumbing.Routed ? NetConf.RoutedConflistName : NetConf.LoomConflistName;
            if (name != fromName)
            {
                File.Delete(Path.Combine(dir, name));
            }
        }

        foreach (var backup in Directory.Exists(dir) ? Directory.GetFiles(dir, "*" + NetConf.BackupSuffix) : [])
        {
            var original = backup[..^NetConf.BackupSuffix.Length];
            if (!File.Exists(original))
            {
                File.Move(backup, original);
                await output.WriteLineAsync($"{Path.GetFileName(original)} restored on {node}").ConfigureAwait(false);
            }
        }
    }

    public Task DeleteTestPodAsync(string node, CancellationToken cancellationToken)
    {
        state.Refresh();
        if (state.Pod(TestPodName(node)) is not null)
        {
            LabPods.DeletePod(state, TestPodName(node));
        }

        return Task.CompletedTask;
    }

    private async Task StopAgentAsync(string node)
    {
        state.Refresh();
        var n = state.Node(node);
        if (LabProcesses.IsRecordedAlive(n.AgentPid, n.AgentStartTime))
        {
            await LabProcesses.StopAsync(n.AgentPid!.Value, TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Until the agent answers, its primary network is ready with a CNI config the runtime would pick, and the node is
    /// Ready. A primary network that never gets ready is not this step's failure but the verification's (which rolls
    /// the node back): past the timeout an agent that answers on a Ready node is enough.
    /// </summary>
    private async Task WaitAgentReadyAsync(string node, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        string? why;
        do
        {
            var status = await AgentStatusAsync(state, node, ct).ConfigureAwait(false);
            var primary = status?.Networks.FirstOrDefault(n => n.Primary);
            var nodes = await LabStore.ReadNodesAsync(state, ct).ConfigureAwait(false);
            var ready = nodes.TryGetValue(node, out var stored) && stored.Ready;
            why = status is null ? "no answer on its socket"
                : !ready ? "node not Ready in the store"
                : primary is null ? "no primary network yet"
                : !primary.Ready ? $"network {primary.Name} not ready"
                : LabCniConfig.Find(state.CniConfDir(node)) is null ? "no CNI config written"
                : null;
            if (why is null)
            {
                return;
            }

            if (sw.Elapsed > AgentReadyTimeout && status is not null && ready)
            {
                await output.WriteLineAsync($"agent of {node} up, but {why} after {AgentReadyTimeout.TotalSeconds:0} s").ConfigureAwait(false);
                return;
            }

            await Task.Delay(200, ct).ConfigureAwait(false);
        }
        while (sw.Elapsed < AgentReadyTimeout * 2);

        var log = Path.Combine(state.NodeDir(node), "agent.log");
        throw new LabException($"the agent of {node} is not up after {(AgentReadyTimeout * 2).TotalSeconds:0} s ({why}); {log}:\n{Lab.LogTail(log)}");
    }

    /// <summary>The agent's <c>status</c>, or null when it does not answer.</summary>
    internal static async Task<AgentStatus?> AgentStatusAsync(LabState state, string node, CancellationToken ct) =>
        (await LabAgents.AskAsync(state, node, "status", TimeSpan.FromSeconds(5), ct).ConfigureAwait(false)).Response?.Status;
}

/// <summary>The Service the migration is probed through: its ClusterIP and port, and its DNS name at the cluster DNS.</summary>
internal sealed record MigrationTarget(string Service, IPEndPoint ClusterIp, string DnsName, IPEndPoint? Dns);
