using System.Net;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Store;
using Loom.Kubernetes;

namespace Loom.Agent;

/// <summary>
/// <c>"source": "kubernetes"</c>: the cluster file gives the cluster config and networks, the API server everything else,
/// mirrored into a node-local in-memory store that the agent runs on as it runs on SQLite or etcd.
/// </summary>
internal sealed partial class AgentHost
{
    /// <summary>What <c>loom status</c> shows as the store (kubernetes mode: the server and each informer).</summary>
    internal Func<string>? SourceDescription { get; init; }

    internal static async Task<int> RunKubernetesAsync(AgentConfig config, TextWriter log, CancellationToken ct)
    {
        var node = config.Node!;
        ClusterFile file;
        try
        {
            file = ClusterFileParser.Parse(await File.ReadAllTextAsync(config.ClusterFile, ct).ConfigureAwait(false));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ClusterFileException)
        {
            await log.WriteLineAsync($"loom agent: cluster file {config.ClusterFile}: {e.Message}").ConfigureAwait(false);
            return 1;
        }

        var local = MemoryStore.Create();
        await using (local.ConfigureAwait(false))
        {
            try
            {
                await NetworkStore.WriteClusterAsync(local, file, ct).ConfigureAwait(false);
            }
            catch (NetworkRefusedException e)
            {
                await log.WriteLineAsync($"loom agent: cluster file {config.ClusterFile}: {e.Message}").ConfigureAwait(false);
                return 1;
            }

            IKubernetesSource source;
            try
            {
                source = KubernetesSource.Create(new KubernetesOptions { Kubeconfig = config.Kubernetes?.Kubeconfig }, local, node, log);
            }
            catch (KubernetesConfigException e)
            {
                await log.WriteLineAsync($"loom agent: {e.Message}").ConfigureAwait(false);
                return 1;
            }

            using (source)
            {
                using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
                var informers = source.RunAsync(stop.Token);
                try
                {
                    await log.WriteLineAsync($"node {node}: source kubernetes, API server {source.Server}").ConfigureAwait(false);
                    await WaitSyncedAsync(source, log, ct).ConfigureAwait(false);
                    if (PodCidrError(node, source.PodCidrsOf(node), file) is { } error)
                    {
                        await log.WriteLineAsync($"loom agent: {error}").ConfigureAwait(false);
                        return 1;
                    }

                    using var agent = new AgentHost(config, local, log) { SourceDescription = source.Describe };
                    return await NodeAgent.RunHostAsync(agent, log, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    return 0;
                }
                finally
                {
                    await stop.CancelAsync().ConfigureAwait(false);
                    await informers.ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>Waits for every informer's first list, saying every 30 s what is missing (an unreachable server, RBAC).</summary>
    private static async Task WaitSyncedAsync(IKubernetesSource source, TextWriter log, CancellationToken ct)
    {
        while (true)
        {
            try
            {
                await source.WaitSyncedAsync(TimeSpan.FromSeconds(30), ct).ConfigureAwait(false);
                await log.WriteLineAsync(source.Describe()).ConfigureAwait(false);
                return;
            }
            catch (KubernetesSyncException e)
            {
                await log.WriteLineAsync($"loom agent: {e.Message}").ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// The node's block must be the controller manager's (spec.podCIDR): a node-local pool would hand every node the
    /// same first block. It must also be a block of every network's pool, so the allocators keep it instead of taking another.
    /// </summary>
    internal static string? PodCidrError(string node, IReadOnlyList<IPNetwork> cidrs, ClusterFile file)
    {
        if (cidrs.Count == 0)
        {
            return $"node {node} has no spec.podCIDR: in kubernetes mode each node's pod CIDR comes from the controller manager "
                   + "(kube-controller-manager --allocate-node-cidrs=true --cluster-cidr=POOL --node-cidr-mask-size=N, as Flannel needs); "
                   + "Loom's own pool would give clashing blocks across nodes (it has no cluster-wide allocator there yet)";
        }

        if (file.Networks.Count > 1)
        {
            return $"the cluster file names {file.Networks.Count} networks: in kubernetes mode only one (the controller manager allocates a single block per node)";
        }

        var cidr = cidrs[0];
        foreach (var (pool, mask, what) in file.Networks.Select(n => (n.PodCidr, n.NodeMaskSize, $"network {n.Name}"))
                     .Append((file.Cluster.PodCidrPools[0], file.Cluster.NodeMaskSize, "the cluster config")))
        {
            if (cidr.PrefixLength != mask || pool.PrefixLength > cidr.PrefixLength || !pool.Contains(cidr.BaseAddress))
            {
                return $"node {node}'s spec.podCIDR {cidr} is not a /{mask} of {what}'s pool {pool}: the cluster file's podCIDR and nodeMaskSize "
                       + "must be kube-controller-manager's --cluster-cidr and --node-cidr-mask-size";
            }
        }

        return null;
    }
}
