using Loom.Core.Networks;
using Loom.Core.Store;

namespace Loom.Core.Migration;

/// <summary>
/// <c>migrate node</c>: runs <see cref="MigrationPlan.Migrate"/> on one node through <see cref="INodeMigrationHost"/>,
/// recording each step in the stored migration before and after it runs, so a run interrupted anywhere resumes at the
/// step it stopped in. A failed verification rolls the node back (<see cref="MigrationPlan.Rollback"/>). The label
/// change is the store's and done here.
/// </summary>
public sealed class NodeMigration(IStore store, INodeMigrationHost host)
{
    /// <summary>Hears each step (of the migration or its rollback) as it starts, before it runs.</summary>
    public Action<string, MigrationStep>? StepStarted { get; init; }

    /// <summary>Hears each step that completed.</summary>
    public Action<string, MigrationStep>? StepDone { get; init; }

    /// <summary>Migrates <paramref name="node"/>, or resumes where a previous run stopped; returns how it ended.</summary>
    public async Task<NodeMigrationResult> RunAsync(string node, CancellationToken cancellationToken = default)
    {
        var m = await PreconditionsAsync(node, cancellationToken).ConfigureAwait(false);
        var state = m.NodeState(node);
        if (state.Phase == NodeMigrationPhase.Migrated)
        {
            return new(node, NodeMigrationPhase.Migrated, null);
        }

        var remaining = MigrationPlan.Remaining(state);
        if (MigrationPlan.IsRollback(remaining[0]))
        {
            return await RollbackStepsAsync(node, remaining, cancellationToken).ConfigureAwait(false);
        }

        if (state.Phase != NodeMigrationPhase.Migrating)
        {
            await MigrationRecord.NodeAsync(store, node, _ => new NodeMigrationState { Phase = NodeMigrationPhase.Migrating }, cancellationToken).ConfigureAwait(false);
        }

        for (var i = 0; i < remaining.Count; i++)
        {
            var step = remaining[i];
            await MigrationRecord.NodeAsync(store, node, s => s with { Step = step, Done = false }, cancellationToken).ConfigureAwait(false);
            StepStarted?.Invoke(node, step);
            if (step == MigrationStep.Verify)
            {
                var failed = await Guarded(node, () => host.VerifyAsync(node, m.To, cancellationToken)).ConfigureAwait(false);
                if (failed is not null)
                {
                    // One write: the failed check and the rollback's first step, so a resume can only continue the rollback.
                    await MigrationRecord.NodeAsync(store, node, s => s with
                    {
                        Step = MigrationPlan.Rollback[0], Done = false, Error = null, RollbackReason = failed,
                    }, cancellationToken).ConfigureAwait(false);
                    return await RollbackStepsAsync(node, MigrationPlan.Rollback, cancellationToken).ConfigureAwait(false);
                }
            }
            else
            {
                await Guarded(node, async () =>
                {
                    await RunStepAsync(node, step, cancellationToken).ConfigureAwait(false);
                    return (string?)null;
                }).ConfigureAwait(false);
            }

            var last = i == remaining.Count - 1;
            await MigrationRecord.NodeAsync(store, node, s => s with
            {
                Done = true, Error = null,
                Phase = last ? NodeMigrationPhase.Migrated : s.Phase,
                RollbackReason = last ? null : s.RollbackReason,
            }, cancellationToken).ConfigureAwait(false);
            StepDone?.Invoke(node, step);
        }

        return new(node, NodeMigrationPhase.Migrated, null);
    }

    /// <summary>Rolls <paramref name="node"/> back on demand (whatever step it reached), or resumes an interrupted rollback.</summary>
    public async Task<NodeMigrationResult> RollbackAsync(string node, string reason, CancellationToken cancellationToken = default)
    {
        var m = await PreconditionsAsync(node, cancellationToken).ConfigureAwait(false);
        var remaining = MigrationPlan.Remaining(m.NodeState(node));
        if (remaining.Count == 0 || !MigrationPlan.IsRollback(remaining[0]))
        {
            remaining = MigrationPlan.Rollback;
            await MigrationRecord.NodeAsync(store, node, s => s with
            {
                Phase = NodeMigrationPhase.Migrating, Step = remaining[0], Done = false, Error = null, RollbackReason = reason,
            }, cancellationToken).ConfigureAwait(false);
        }

        return await RollbackStepsAsync(node, remaining, cancellationToken).ConfigureAwait(false);
    }

    private async Task<NodeMigrationResult> RollbackStepsAsync(string node, IReadOnlyList<MigrationStep> steps, CancellationToken cancellationToken)
    {
        for (var i = 0; i < steps.Count; i++)
        {
            var step = steps[i];
            await MigrationRecord.NodeAsync(store, node, s => s with { Phase = NodeMigrationPhase.Migrating, Step = step, Done = false }, cancellationToken)
                .ConfigureAwait(false);
            StepStarted?.Invoke(node, step);
            await Guarded(node, async () =>
            {
                await RunStepAsync(node, step, cancellationToken).ConfigureAwait(false);
                return (string?)null;
            }).ConfigureAwait(false);
            var last = i == steps.Count - 1;
            await MigrationRecord.NodeAsync(store, node, s => s with
            {
                Done = true, Error = null, Phase = last ? NodeMigrationPhase.RolledBack : s.Phase,
            }, cancellationToken).ConfigureAwait(false);
            StepDone?.Invoke(node, step);
        }

        var reason = (await MigrationRecord.ActiveAsync(store, cancellationToken).ConfigureAwait(false)).NodeState(node).RollbackReason;
        return new(node, NodeMigrationPhase.RolledBack, reason);
    }

    private Task RunStepAsync(string node, MigrationStep step, CancellationToken ct) => step switch
    {
        MigrationStep.Cordon => host.CordonAsync(node, ct),
        MigrationStep.Drain => host.DrainAsync(node, ct),
        MigrationStep.Label => MigrationRecord.LabelAsync(store, node, on: true, ct),
        MigrationStep.RestartAgent or MigrationStep.RollbackRestartAgent => host.RestartAgentAsync(node, ct),
        MigrationStep.Reboot => host.RebootAsync(node, ct),
        MigrationStep.Uncordon or MigrationStep.RollbackUncordon => host.UncordonAsync(node, ct),
        MigrationStep.RollbackUnlabel => MigrationRecord.LabelAsync(store, node, on: false, ct),
        MigrationStep.RollbackRestoreCniConfig => host.RestoreCniConfigAsync(node, ct),
        MigrationStep.RollbackDeleteTestPod => host.DeleteTestPodAsync(node, ct),
        _ => throw new ArgumentOutOfRangeException(nameof(step), step, "verify is run by its caller"),
    };

    // A step that throws leaves its error in the record (the step stays not done, so a resume runs it again).
    private async Task<T> Guarded<T>(string node, Func<Task<T>> run)
    {
        try
        {
            return await run().ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            await MigrationRecord.NodeAsync(store, node, s => s with { Error = e.Message }, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    private async Task<ClusterMigration> PreconditionsAsync(string node, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(node);
        var m = await MigrationRecord.ActiveAsync(store, cancellationToken).ConfigureAwait(false);
        if (m.Finalize.Step is { } s)
        {
            throw new MigrationRefusedException($"finalize has started (step {NetworkYaml.Wire(s)}); run 'loom migrate finalize' to finish it");
        }

        return await store.GetAsync(Kinds.Node, node, cancellationToken).ConfigureAwait(false) is null
            ? throw new MigrationRefusedException($"node \"{node}\" not found (is its agent running?)")
            : m;
    }
}
