using Loom.Core.Model;
using Loom.Core.Pool;
using Loom.Core.Store;
using Loom.Store;

namespace Loom.Agent;

/// <summary>Entry point of <c>loom agent</c>: opens the store, then runs the node's agent until cancelled.</summary>
public static class NodeAgent
{
    /// <returns>The process exit code.</returns>
    public static async Task<int> RunAsync(AgentConfig config, TextWriter log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(log);
        if (config.Source == "kubernetes")
        {
            return await AgentHost.RunKubernetesAsync(config, log, cancellationToken).ConfigureAwait(false);
        }

        if (config.Source != "store")
        {
            await log.WriteLineAsync($"loom agent: source \"{config.Source}\" is not a source; use store or kubernetes").ConfigureAwait(false);
            return 2;
        }

        IStore store;
        try
        {
            store = await StoreOpener.OpenAsync(config.Store, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or ArgumentException or StoreConfigException or Microsoft.Data.Sqlite.SqliteException)
        {
            await log.WriteLineAsync($"loom agent: cannot open the {config.Store.Type} store: {e.Message}").ConfigureAwait(false);
            return 1;
        }

        await using (store.ConfigureAwait(false))
        {
            using var agent = new AgentHost(config, store, log);
            return await RunHostAsync(agent, log, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Runs the agent until cancelled; a start that cannot succeed is reported and ends it with 1.</summary>
    internal static async Task<int> RunHostAsync(AgentHost agent, TextWriter log, CancellationToken cancellationToken)
    {
        try
        {
            await agent.RunAsync(cancellationToken).ConfigureAwait(false);
            return 0;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return 0;
        }
        catch (AgentStartException e)
        {
            await log.WriteLineAsync($"loom agent: {e.Message}").ConfigureAwait(false);
            return 1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Net.Sockets.SocketException)
        {
            // Start-up only (the loops never end on an error): the state directory or the API socket is not usable.
            await log.WriteLineAsync($"loom agent: cannot start: {e.Message}").ConfigureAwait(false);
            return 1;
        }
    }

    /// <summary>
    /// Removes a node from the cluster, as <c>kubectl delete node</c> with the IPAM controller behind it: its
    /// object (peers then drop their routes, neighbour and FDB entries to it), its endpoints, its block of every network,
    /// its identity references.
    /// </summary>
    public static async Task<bool> RemoveNodeAsync(IStore store, string node, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        var existed = await store.DeleteAsync(Kinds.Node, node, cancellationToken: cancellationToken).ConfigureAwait(false);
        var (endpoints, _) = await store.ListAsync(Kinds.Endpoint, cancellationToken).ConfigureAwait(false);
        foreach (var e in endpoints.Where(e => e.Value.Node == node))
        {
            await store.DeleteAsync(Kinds.Endpoint, e.Key, cancellationToken: cancellationToken).ConfigureAwait(false);
        }

        var (claims, _) = await store.ListAsync(Kinds.PodCidr, cancellationToken).ConfigureAwait(false);
        foreach (var claim in claims.Where(c => c.Value.Node == node))
        {
            // CAS on the claim's revision: never free a block someone re-claimed since the list.
            await store.DeleteAsync(Kinds.PodCidr, claim.Key, claim.Revision, cancellationToken).ConfigureAwait(false);
        }

        // Its references to identities: the numbers its pods used are collected once no other node holds them.
        await new Loom.Core.Policy.IdentityAllocator(store, node).SyncReferencesAsync(new HashSet<uint>(), cancellationToken).ConfigureAwait(false);
        return existed;
    }

    /// <summary>The cluster config in the store, or the defaults written there by the first agent to start.</summary>
    public static async Task<ClusterConfig> ClusterConfigAsync(IStore store, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        while (true)
        {
            var existing = await store.GetAsync(Kinds.ClusterConfig, "cluster", cancellationToken).ConfigureAwait(false);
            if (existing is not null)
            {
                return existing.Value;
            }

            var created = await store.PutAsync(Kinds.ClusterConfig, new ClusterConfig(), expectedRevision: 0, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (created.Succeeded)
            {
                return new ClusterConfig();
            }
        }
    }
}

/// <summary>The agent cannot start: the message says what to fix (no such interface, pool exhausted...).</summary>
public sealed class AgentStartException : Exception
{
    public AgentStartException()
    {
    }

    public AgentStartException(string message)
        : base(message)
    {
    }

    public AgentStartException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
