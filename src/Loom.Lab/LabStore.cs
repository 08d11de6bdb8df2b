using System.Net;
using System.Text.Json;
using Loom.Core.Cni;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Store;
using Loom.Linux;
using Loom.Store;

namespace Loom.Lab;

/// <summary>The lab's cluster store: etcd inside k8s-ctr or the SQLite file the agents share, and what the lab writes to and reads from it.</summary>
internal static class LabStore
{
    /// <summary>The store the lab's agents share (SQLite labs; an etcd lab's store is only reachable inside k8s-ctr).</summary>
    internal static async Task<IStore> OpenStoreAsync(LabState state, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Store != "sqlite" || state.StorePath is null)
        {
            throw new LabException("this command needs a lab with the SQLite store (`loom lab up --store sqlite`, the default); etcd labs are not supported by it yet");
        }

        return await StoreOpener.OpenAsync(new StoreConfig { Type = "sqlite", Path = state.StorePath }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Node readiness as the store reports it: node name to (Ready, pod CIDRs). Empty if the store cannot be read.</summary>
    internal static async Task<IReadOnlyDictionary<string, Node>> ReadNodesAsync(LabState state, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        var result = new Dictionary<string, Node>(StringComparer.Ordinal);
        if (state.Store == "sqlite")
        {
            if (state.StorePath is null || !File.Exists(state.StorePath))
            {
                return result;
            }

            var store = await OpenStoreAsync(state, cancellationToken).ConfigureAwait(false);
            await using (store.ConfigureAwait(false))
            {
                var (items, _) = await store.ListAsync(Kinds.Node, cancellationToken).ConfigureAwait(false);
                foreach (var item in items)
                {
                    result[item.Key] = item.Value;
                }
            }
        }
        else
        {
            using var http = EtcdHttp(state);
            foreach (var (_, value) in await http.EtcdRangeAsync(new Uri(Lab.EtcdClientUrl), Lab.EtcdKeyPrefix + Kinds.Node.Name + "/", cancellationToken).ConfigureAwait(false))
            {
                if (JsonSerializer.Deserialize(value, Kinds.Node.TypeInfo) is { } node)
                {
                    result[node.Name] = node;
                }
            }
        }

        return result;
    }

    internal static async Task StartEtcdAsync(LabState state, CancellationToken cancellationToken)
    {
        var ctr = state.Nodes[0];
        var dataDir = Path.Combine(state.LabDir, "etcd");
        Directory.CreateDirectory(dataDir);
        LabEtcdPki.Create(state, IPAddress.Parse(ctr.Ip));
        string[] args =
        [
            "--name", ctr.Name,
            "--data-dir", dataDir,
            "--listen-client-urls", Lab.EtcdClientUrl,
            "--advertise-client-urls", Lab.EtcdClientUrl,
            "--listen-peer-urls", Lab.EtcdPeerUrl,
            "--initial-advertise-peer-urls", Lab.EtcdPeerUrl,
            "--initial-cluster", $"{ctr.Name}={Lab.EtcdPeerUrl}",
            "--initial-cluster-state", "new",
            "--client-cert-auth",
            "--trusted-ca-file", LabEtcdPki.CaFile(state),
            "--cert-file", LabEtcdPki.ServerCert(state),
            "--key-file", LabEtcdPki.ServerKey(state),
            "--auto-compaction-mode", "revision", "--auto-compaction-retention", "10000", // as the SQLite store keeps
        ];
        var log = Path.Combine(state.LabDir, "etcd.log");
        var pid = LabProcesses.StartDetached(ctr.Netns, log, "/usr/bin/etcd", args);
        var started = LabProcesses.StartTime(pid);
        state.Change(c =>
        {
            c.EtcdPid = pid;
            c.EtcdStartTime = started;
        });

        using var http = EtcdHttp(state);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!await http.HealthyAsync(new Uri(Lab.EtcdClientUrl), cancellationToken).ConfigureAwait(false))
        {
            if (!LabProcesses.IsAlive(pid))
            {
                throw new LabException($"etcd exited; {log}:\n{Lab.LogTail(log)}");
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new LabException($"etcd not healthy after 30 s; {log}:\n{Lab.LogTail(log)}");
            }

            await Task.Delay(200, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>HTTPS to the lab's etcd (in k8s-ctr) with the lab's own client certificate.</summary>
    internal static NetnsHttp EtcdHttp(LabState state) => new(state.Nodes[0].Netns, LabEtcdPki.Lab(state).ClientOptions());

    /// <summary>The cluster file's config and networks (validated by <see cref="LabCluster.UpAsync"/> before the lab was built).</summary>
    internal static async Task WriteClusterConfigAsync(LabState state, ClusterFile file, CancellationToken cancellationToken)
    {
        if (state.Store == "sqlite")
        {
            var store = await OpenStoreAsync(state, cancellationToken).ConfigureAwait(false);
            await using (store.ConfigureAwait(false))
            {
                await NetworkStore.WriteClusterAsync(store, file, cancellationToken).ConfigureAwait(false);
            }
        }
        else
        {
            // etcd listens only inside k8s-ctr: write through its v3 JSON gateway over a socket made in that namespace,
            // at the key EtcdStore uses ({prefix}{kind}/{key}).
            using var http = EtcdHttp(state);
            await http.EtcdPutAsync(new Uri(Lab.EtcdClientUrl), Lab.EtcdKeyPrefix + Kinds.ClusterConfig.Name + "/" + Kinds.ClusterConfig.KeyOf(file.Cluster),
                JsonSerializer.Serialize(file.Cluster, Kinds.ClusterConfig.TypeInfo), cancellationToken).ConfigureAwait(false);
            foreach (var n in file.Networks)
            {
                await http.EtcdPutAsync(new Uri(Lab.EtcdClientUrl), Lab.EtcdKeyPrefix + Kinds.Network.Name + "/" + Kinds.Network.KeyOf(n),
                    JsonSerializer.Serialize(n, Kinds.Network.TypeInfo), cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
