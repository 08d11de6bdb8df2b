using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Core.Validation;

namespace Loom.Core.Networks;

/// <summary>
/// The cluster's networks in the store, changed only as a whole that validates: an apply is checked against every
/// network already stored and a delete against what still names the network, and nothing is written when refused.
/// </summary>
public static class NetworkStore
{
    /// <summary>Stores <paramref name="networks"/> (new or changed); "created", "configured" or "unchanged" per network.</summary>
    public static async Task<IReadOnlyList<(string Name, string Outcome)>> ApplyAsync(IStore store, IReadOnlyList<Network> networks,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(networks);
        var cluster = await ClusterAsync(store, cancellationToken).ConfigureAwait(false);
        var stored = await ListAsync(store, cancellationToken).ConfigureAwait(false);
        var errors = new List<string>();
        for (var i = 0; i < networks.Count; i++)
        {
            var n = networks[i];
            var fieldErrors = new List<FieldError>();
            NetworkValidation.Validate(fieldErrors, n, "");
            var others = stored.Select(s => s.Value).Where(s => s.Name != n.Name).Concat(networks.Take(i).Where(a => a.Name != n.Name));
            NetworkValidation.Conflicts(fieldErrors, n, others, "");
            if (networks.Take(i).Any(a => a.Name == n.Name))
            {
                fieldErrors.Add(FieldError.Duplicate("name", n.Name));
            }

            if (NetworkValidation.Overlap(n.PodCidr, cluster.ServiceCidr) && n.PodCidr.PrefixLength > 0)
            {
                fieldErrors.Add(FieldError.Invalid("podCIDR", n.PodCidr.ToString(), $"overlaps the service CIDR {cluster.ServiceCidr}"));
            }

            // Nodes hold blocks of the pool and pods addresses in them: a pool is re-made, never moved.
            if (stored.FirstOrDefault(s => s.Value.Name == n.Name) is { } old
                && (old.Value.PodCidr != n.PodCidr || old.Value.NodeMaskSize != n.NodeMaskSize))
            {
                fieldErrors.Add(FieldError.Forbidden(old.Value.PodCidr != n.PodCidr ? "podCIDR" : "nodeMaskSize",
                    $"a stored network's pool ({old.Value.PodCidr}, /{old.Value.NodeMaskSize} per node) cannot change under the nodes holding blocks of it; delete the network and create it again"));
            }

            errors.AddRange(fieldErrors.Select(e => $"network \"{n.Name}\": {e}"));
        }

        if (errors.Count > 0)
        {
            throw new NetworkRefusedException(errors);
        }

        var outcomes = new List<(string, string)>();
        foreach (var n in networks)
        {
            var old = stored.FirstOrDefault(s => s.Value.Name == n.Name);
            if (old is not null && old.Value == n)
            {
                outcomes.Add((n.Name, "unchanged"));
                continue;
            }

            // Compare-and-swap on what was validated against: a concurrent change to this network makes the apply stop here.
            var put = await store.PutAsync(Kinds.Network, n, expectedRevision: old?.Revision ?? 0, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (!put.Succeeded)
            {
                throw new NetworkRefusedException($"network \"{n.Name}\" changed in the store while it was applied; applied before it: "
                    + (outcomes.Count == 0 ? "none" : string.Join(", ", outcomes.Select(o => o.Item1))) + "; apply again");
            }

            outcomes.Add((n.Name, old is null ? "created" : "configured"));
        }

        return outcomes;
    }

    /// <summary>Deletes a network no one names any more (the cluster's default, a NodeConfig); false if there is none of that name.</summary>
    public static async Task<bool> DeleteAsync(IStore store, string name, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentException.ThrowIfNullOrEmpty(name);
        var existing = await store.GetAsync(Kinds.Network, name, cancellationToken).ConfigureAwait(false);
        if (existing is null)
        {
            return false;
        }

        var cluster = await ClusterAsync(store, cancellationToken).ConfigureAwait(false);
        var errors = new List<string>();
        if (cluster.DefaultNetwork == name)
        {
            errors.Add($"network \"{name}\" is the cluster's defaultNetwork; make another network the default first");
        }

        var (configs, _) = await store.ListValidAsync(Kinds.NodeConfig, (_, _) => { }, cancellationToken).ConfigureAwait(false);
        errors.AddRange(configs.Where(c => c.Value.Network == name)
            .Select(c => $"network \"{name}\" is the primary network of nodeconfig \"{c.Key}\"; point it elsewhere first (loom node config {c.Key} --network ...)"));
        if (errors.Count > 0)
        {
            throw new NetworkRefusedException(errors);
        }

        return await store.DeleteAsync(Kinds.Network, name, existing.Revision, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The stored networks, ordered by name; a stored network that does not decode refuses every change (it could not be checked against).</summary>
    public static async Task<IReadOnlyList<Versioned<Network>>> ListAsync(IStore store, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var malformed = new List<string>();
        var (items, _) = await store.ListValidAsync(Kinds.Network, (key, error) => malformed.Add($"stored network \"{key}\" is malformed: {error}"), cancellationToken)
            .ConfigureAwait(false);
        return malformed.Count > 0 ? throw new NetworkRefusedException(malformed) : items;
    }

    /// <summary>A NodeConfig, checked against the stored networks before it is written.</summary>
    public static async Task PutNodeConfigAsync(IStore store, NodeConfig config, long? expectedRevision, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(config);
        var networks = await ListAsync(store, cancellationToken).ConfigureAwait(false);
        var errors = ClusterValidation.NodeConfig(config, [.. networks.Select(n => n.Value)]);
        if (errors.Count > 0)
        {
            throw new NetworkRefusedException([.. errors.Select(e => $"nodeconfig \"{config.Node}\": {e}")]);
        }

        var put = await store.PutAsync(Kinds.NodeConfig, config, expectedRevision, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (!put.Succeeded)
        {
            throw new NetworkRefusedException($"nodeconfig \"{config.Node}\" changed in the store meanwhile; try again");
        }
    }

    /// <summary>A cluster file into a store: the cluster config, then its networks (what <c>loom lab up</c> writes).</summary>
    public static async Task WriteClusterAsync(IStore store, ClusterFile file, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(file);
        var errors = ClusterValidation.Validate(file.Cluster, file.Networks);
        if (errors.Count > 0)
        {
            throw new NetworkRefusedException([.. errors.Select(e => e.ToString())]);
        }

        await store.PutAsync(Kinds.ClusterConfig, file.Cluster, cancellationToken: cancellationToken).ConfigureAwait(false);
        foreach (var n in file.Networks)
        {
            await store.PutAsync(Kinds.Network, n, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task<ClusterConfig> ClusterAsync(IStore store, CancellationToken cancellationToken) =>
        (await store.GetValidAsync(Kinds.ClusterConfig, "cluster", (_, _) => { }, cancellationToken).ConfigureAwait(false))?.Value ?? new ClusterConfig();
}
