using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Store;

namespace Loom.Core.Migration;

/// <summary>
/// <c>migrate finalize</c> in the store: the guide's end state, in the order that keeps traffic flowing, each step
/// recorded before and after, so an interrupted finalize resumes at the step it stopped in. Masquerade turns bpf before
/// host routing does: bpf host routing with iptables masquerade is refused (the traffic would skip netfilter unmasqueraded).
/// </summary>
public static class MigrationFinalize
{
    public static IReadOnlyList<FinalizeStep> Steps { get; } =
    [
        FinalizeStep.PolicyEnforcementDefault, FinalizeStep.ServiceBackendEbpf, FinalizeStep.NativeRouting, FinalizeStep.MasqueradeBpf,
        FinalizeStep.HostRoutingBpf, FinalizeStep.DefaultNetwork, FinalizeStep.DeleteOldNetwork, FinalizeStep.DeleteNodeConfig,
        FinalizeStep.RemoveNodeLabels, FinalizeStep.Finalized,
    ];

    /// <summary>
    /// Runs (or resumes) finalize; <paramref name="progress"/> hears each step as it completes. Refused while a pod
    /// still has an address from the old network's pool (the count is in the message), before anything changes.
    /// <paramref name="converged"/>, when given, returns once every node applied a step's change (the next step must not
    /// start before: each relies on the one before it, e.g. BPF host routing on BPF masquerade); a step is recorded
    /// done only after it, so an interrupted wait runs the step again.
    /// </summary>
    public static async Task<ClusterMigration> RunAsync(IStore store, Action<FinalizeStep>? progress = null,
        Func<FinalizeStep, CancellationToken, Task>? converged = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var m = await MigrationRecord.ActiveAsync(store, cancellationToken).ConfigureAwait(false);
        var start = m.Finalize.Step is { } reached ? Steps.ToList().IndexOf(reached) + (m.Finalize.Done ? 1 : 0) : 0;
        if (start <= Steps.ToList().IndexOf(FinalizeStep.DeleteOldNetwork))
        {
            var (endpoints, _) = await store.ListAsync(Kinds.Endpoint, cancellationToken).ConfigureAwait(false);
            var left = MigrationStatusReport.InPool(endpoints.Select(e => e.Value), m.FromPodCidr);
            if (left > 0)
            {
                throw new MigrationRefusedException(
                    $"{left} pod(s) still have an address from network \"{m.From}\" ({m.FromPodCidr}); migrate their nodes first (see 'loom migrate status')");
            }
        }

        foreach (var step in Steps.Skip(start))
        {
            await MigrationRecord.UpdateAsync(store, x => x with { Finalize = new FinalizeState { Step = step, Done = false } }, cancellationToken).ConfigureAwait(false);
            try
            {
                await RunStepAsync(store, m, step, cancellationToken).ConfigureAwait(false);
                if (converged is not null)
                {
                    await converged(step, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                await MigrationRecord.UpdateAsync(store, x => x with { Finalize = x.Finalize with { Error = e.Message } }, CancellationToken.None).ConfigureAwait(false);
                throw;
            }

            m = await MigrationRecord.UpdateAsync(store, x => x with { Finalize = new FinalizeState { Step = step, Done = true } }, cancellationToken).ConfigureAwait(false);
            progress?.Invoke(step);
        }

        return m;
    }

    /// <summary>What a step does, as printed.</summary>
    public static string Describe(FinalizeStep step, ClusterMigration m)
    {
        ArgumentNullException.ThrowIfNull(m);
        return step switch
        {
            FinalizeStep.PolicyEnforcementDefault => "policyEnforcementMode default",
            FinalizeStep.ServiceBackendEbpf => "serviceBackend ebpf on every node (node overrides cleared)",
            FinalizeStep.NativeRouting => $"network \"{m.To}\": routingMode native, autoDirectNodeRoutes, nativeRoutingCIDR its pool",
            FinalizeStep.MasqueradeBpf => $"network \"{m.To}\": masquerade bpf",
            FinalizeStep.HostRoutingBpf => $"network \"{m.To}\": hostRouting bpf",
            FinalizeStep.DefaultNetwork => $"defaultNetwork \"{m.To}\"",
            FinalizeStep.DeleteOldNetwork => $"network \"{m.From}\" deleted",
            FinalizeStep.DeleteNodeConfig => $"nodeconfig \"{ClusterMigration.NodeConfigName}\" deleted",
            FinalizeStep.RemoveNodeLabels => $"label {ClusterMigration.NodeLabel} removed from every node",
            FinalizeStep.Finalized => "migration finalized",
            _ => throw new ArgumentOutOfRangeException(nameof(step), step, null),
        };
    }

    private static async Task RunStepAsync(IStore store, ClusterMigration m, FinalizeStep step, CancellationToken ct)
    {
        switch (step)
        {
            case FinalizeStep.PolicyEnforcementDefault:
                await ClusterAsync(store, c => c with { PolicyEnforcementMode = PolicyEnforcementMode.Default }, ct).ConfigureAwait(false);
                break;
            case FinalizeStep.ServiceBackendEbpf:
                await ClusterAsync(store, c => c with { ServiceBackend = ServiceProxyMode.Ebpf }, ct).ConfigureAwait(false);
                var (configs, _) = await store.ListAsync(Kinds.NodeConfig, ct).ConfigureAwait(false);
                foreach (var c in configs.Where(c => c.Value.ServiceBackend is not null))
                {
                    await store.UpdateAsync(Kinds.NodeConfig, c.Key, x => x with { ServiceBackend = null }, ct).ConfigureAwait(false);
                }

                break;
            case FinalizeStep.NativeRouting:
                await NetworkAsync(store, m.To, n => n with
                {
                    RoutingMode = RoutingMode.Native, Tunnel = null, AutoDirectNodeRoutes = true, NativeRoutingCidr = n.PodCidr,
                }, ct).ConfigureAwait(false);
                break;
            case FinalizeStep.MasqueradeBpf:
                await NetworkAsync(store, m.To, n => n with { Masquerade = Masquerade.Bpf }, ct).ConfigureAwait(false);
                break;
            case FinalizeStep.HostRoutingBpf:
                await NetworkAsync(store, m.To, n => n with { HostRouting = HostRouting.Bpf }, ct).ConfigureAwait(false);
                break;
            case FinalizeStep.DefaultNetwork:
                var to = await StoredNetworkAsync(store, m.To, ct).ConfigureAwait(false);
                await ClusterAsync(store, c => ClusterFile.WithDefaultNetwork(c, to), ct).ConfigureAwait(false);
                break;
            case FinalizeStep.DeleteOldNetwork:
                await NetworkStore.DeleteAsync(store, m.From, ct).ConfigureAwait(false);
                break;
            case FinalizeStep.DeleteNodeConfig:
                await store.DeleteAsync(Kinds.NodeConfig, ClusterMigration.NodeConfigName, cancellationToken: ct).ConfigureAwait(false);
                break;
            case FinalizeStep.RemoveNodeLabels:
                var (nodes, _) = await store.ListAsync(Kinds.Node, ct).ConfigureAwait(false);
                foreach (var n in nodes.Where(n => n.Value.Labels.ContainsKey(ClusterMigration.NodeLabel)))
                {
                    await MigrationRecord.LabelAsync(store, n.Key, on: false, ct).ConfigureAwait(false);
                }

                break;
            case FinalizeStep.Finalized:
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(step), step, null);
        }
    }

    private static async Task ClusterAsync(IStore store, Func<ClusterConfig, ClusterConfig> change, CancellationToken ct)
    {
        if (await store.UpdateAsync(Kinds.ClusterConfig, "cluster", change, ct).ConfigureAwait(false) is null)
        {
            throw new MigrationRefusedException("the cluster config is not in the store");
        }
    }

    // Through NetworkStore, so each change is validated against the other networks as 'loom network apply' is.
    private static async Task NetworkAsync(IStore store, string name, Func<Network, Network> change, CancellationToken ct)
    {
        var n = await StoredNetworkAsync(store, name, ct).ConfigureAwait(false);
        await NetworkStore.ApplyAsync(store, [change(n)], ct).ConfigureAwait(false);
    }

    private static async Task<Network> StoredNetworkAsync(IStore store, string name, CancellationToken ct) =>
        (await store.GetAsync(Kinds.Network, name, ct).ConfigureAwait(false))?.Value
        ?? throw new MigrationRefusedException($"network \"{name}\" is not in the store");
}
