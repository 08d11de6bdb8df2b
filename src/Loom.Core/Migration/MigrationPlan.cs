namespace Loom.Core.Migration;

/// <summary>The steps of <c>migrate node</c> and of its rollback, in order, as data (what runs, what is printed, where a resume starts).</summary>
public static class MigrationPlan
{
    /// <summary>Cordon, drain, label, restart the agent, reboot, verify, uncordon.</summary>
    public static IReadOnlyList<MigrationStep> Migrate { get; } =
    [
        MigrationStep.Cordon, MigrationStep.Drain, MigrationStep.Label, MigrationStep.RestartAgent,
        MigrationStep.Reboot, MigrationStep.Verify, MigrationStep.Uncordon,
    ];

    /// <summary>After a failed verification: unlabel, old CNI config back, restart the agent, uncordon, delete the test pod.</summary>
    public static IReadOnlyList<MigrationStep> Rollback { get; } =
    [
        MigrationStep.RollbackUnlabel, MigrationStep.RollbackRestoreCniConfig, MigrationStep.RollbackRestartAgent,
        MigrationStep.RollbackUncordon, MigrationStep.RollbackDeleteTestPod,
    ];

    public static bool IsRollback(MigrationStep step) => Rollback.Contains(step);

    /// <summary>The steps still to run for a node in <paramref name="state"/>: an interrupted step again, a completed one's successors.</summary>
    public static IReadOnlyList<MigrationStep> Remaining(NodeMigrationState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Phase is not NodeMigrationPhase.Migrating || state.Step is not { } step)
        {
            return state.Phase == NodeMigrationPhase.Migrated ? [] : Migrate;
        }

        var plan = IsRollback(step) ? Rollback : Migrate;
        var at = plan.ToList().IndexOf(step);
        return [.. plan.Skip(state.Done ? at + 1 : at)];
    }

    /// <summary>What a step does, as printed.</summary>
    public static string Describe(MigrationStep step) => step switch
    {
        MigrationStep.Cordon => "cordon the node (no new pods)",
        MigrationStep.Drain => "drain the node (evict its pods; a Deployment's pods are recreated elsewhere)",
        MigrationStep.Label => $"label the node {ClusterMigration.NodeLabel}={ClusterMigration.NodeLabelValue} (the new network becomes its primary)",
        MigrationStep.RestartAgent => "restart the node's agent",
        MigrationStep.Reboot => "reboot the node",
        MigrationStep.Verify => "verify the node on the new network",
        MigrationStep.Uncordon => "uncordon the node",
        MigrationStep.RollbackUnlabel => $"remove the label {ClusterMigration.NodeLabel}",
        MigrationStep.RollbackRestoreCniConfig => "restore the old network's CNI config on the node",
        MigrationStep.RollbackRestartAgent => "restart the node's agent",
        MigrationStep.RollbackUncordon => "uncordon the node",
        MigrationStep.RollbackDeleteTestPod => "delete the verification's test pod",
        _ => throw new ArgumentOutOfRangeException(nameof(step), step, null),
    };
}
