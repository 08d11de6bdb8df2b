using Loom.Core.Networks;
using Loom.Core.Store;

namespace Loom.Core.Migration;

/// <summary>
/// <c>migrate rollback NODE</c> in the store alone: the label removed (the old network is the node's primary again)
/// and the node recorded rolled back. The host steps of <see cref="MigrationPlan.Rollback"/> after the unlabel are
/// returned for the operator (or the lab) to run; <see cref="NodeMigration.RollbackAsync"/> runs them all with a host.
/// </summary>
public static class MigrationRollback
{
    public static async Task<IReadOnlyList<MigrationStep>> StoreOnlyAsync(IStore store, string node, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentException.ThrowIfNullOrEmpty(node);
        var m = await MigrationRecord.ActiveAsync(store, cancellationToken).ConfigureAwait(false);
        if (m.Finalize.Step is { } s)
        {
            throw new MigrationRefusedException($"finalize has started (step {NetworkYaml.Wire(s)}); the old network may be gone");
        }

        if (await store.GetAsync(Kinds.Node, node, cancellationToken).ConfigureAwait(false) is null)
        {
            throw new MigrationRefusedException($"node \"{node}\" not found (is its agent running?)");
        }

        const string reason = "rollback on demand";
        await MigrationRecord.NodeAsync(store, node, s => s with
        {
            Phase = NodeMigrationPhase.Migrating, Step = MigrationStep.RollbackUnlabel, Done = false, Error = null, RollbackReason = reason,
        }, cancellationToken).ConfigureAwait(false);
        await MigrationRecord.LabelAsync(store, node, on: false, cancellationToken).ConfigureAwait(false);
        await MigrationRecord.NodeAsync(store, node, s => s with { Phase = NodeMigrationPhase.RolledBack, Done = true }, cancellationToken).ConfigureAwait(false);
        return [.. MigrationPlan.Rollback.Skip(1)];
    }
}
