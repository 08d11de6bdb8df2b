using Loom.Core.Store;

namespace Loom.Core.Migration;

/// <summary>Reads and changes the stored <see cref="ClusterMigration"/>; every change is a compare-and-swap update.</summary>
public static class MigrationRecord
{
    public static async Task<ClusterMigration?> GetAsync(IStore store, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        return (await store.GetAsync(Kinds.Migration, ClusterMigration.Key, cancellationToken).ConfigureAwait(false))?.Value;
    }

    /// <summary>The migration in progress; refused, saying what to run, when there is none (or it is finalized).</summary>
    public static async Task<ClusterMigration> ActiveAsync(IStore store, CancellationToken cancellationToken = default)
    {
        var m = await GetAsync(store, cancellationToken).ConfigureAwait(false);
        return m is null || m.IsFinalized
            ? throw new MigrationRefusedException("the cluster is not migrating; start with 'loom migrate start'")
            : m;
    }

    public static async Task<ClusterMigration> UpdateAsync(IStore store, Func<ClusterMigration, ClusterMigration> change, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        return await store.UpdateAsync(Kinds.Migration, ClusterMigration.Key, change, cancellationToken).ConfigureAwait(false)
            ?? throw new MigrationRefusedException("the migration object was deleted from the store meanwhile");
    }

    public static Task<ClusterMigration> NodeAsync(IStore store, string node, Func<NodeMigrationState, NodeMigrationState> change,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(change);
        return UpdateAsync(store, m => m.WithNode(node, change(m.NodeState(node))), cancellationToken);
    }

    /// <summary>Sets or removes (<paramref name="on"/> false) the migration label on a node; refused if there is no such node.</summary>
    public static async Task LabelAsync(IStore store, string node, bool on, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var updated = await store.UpdateAsync(Kinds.Node, node, n =>
        {
            var labels = new Dictionary<string, string>(n.Labels, StringComparer.Ordinal);
            if (on)
            {
                labels[ClusterMigration.NodeLabel] = ClusterMigration.NodeLabelValue;
            }
            else
            {
                labels.Remove(ClusterMigration.NodeLabel);
            }

            return n with { Labels = labels };
        }, cancellationToken).ConfigureAwait(false);
        if (updated is null)
        {
            throw new MigrationRefusedException($"node \"{node}\" not found (is its agent running?)");
        }
    }
}
