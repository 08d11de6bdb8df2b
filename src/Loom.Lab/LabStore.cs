using System.Net;
using Grpc.Core;
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
    /// <summary>
    /// The store the lab's agents share: the SQLite file, or etcd inside k8s-ctr reached over sockets made in that
    /// namespace (the CLI stays in the root namespace) with the lab's own client certificate.
    /// </summary>
    internal static async Task<IStore> OpenStoreAsync(LabState state, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        switch (state.Store)
        {
            case "sqlite" when state.StorePath is not null:
                return await StoreOpener.OpenAsync(new StoreConfig { Type = "sqlite", Path = state.StorePath }, cancellationToken).ConfigureAwait(false);
            case "etcd" when state.StoreEndpoints.Count > 0:
                var netns = state.Nodes[0].Netns;
                if (!NetNs.Exists(netns))
                {
                    throw new LabException($"the lab's etcd lives in {netns}, which is gone (run `loom lab down` to clean up)");
                }

                var tls = LabEtcdPki.Lab(state);
                var config = new StoreConfig
                {
                    Type = "etcd",
                    Endpoints = state.StoreEndpoints,
                    Tls = new StoreTlsConfig { Ca = tls.CaFile, Cert = tls.CertFile, Key = tls.KeyFile },
                };
                try
                {
                    return await StoreOpener.OpenAsync(config, NetNsHttpHandler.ConnectIn(netns), cancellationToken).ConfigureAwait(false);
                }
                catch (StoreConfigException e)
                {
                    throw new LabException($"the lab's etcd client: {e.Message}", e);
                }

            default:
                throw new LabException($"the lab's state names no usable store (store \"{state.Store}\"); run `loom lab down` and `loom lab up` again");
        }
    }

    /// <summary>Errors that mean the store is busy or not reachable (yet): the caller tries again or reports it.</summary>
    internal static bool Unreachable(Exception e) =>
        e is HttpRequestException or IOException or Microsoft.Data.Sqlite.SqliteException or RpcException;

    /// <summary>One line for an error of <see cref="Unreachable"/>.</summary>
    internal static string Describe(Exception e) => e is RpcException rpc
        ? $"the lab's etcd did not answer: {rpc.StatusCode}: {rpc.Status.Detail}{(rpc.Status.DebugException is { } inner ? $" ({inner.Message})" : "")}"
        : e.Message;

    /// <summary>Node readiness as the store reports it: node name to (Ready, pod CIDRs). Empty if a SQLite lab has no store file yet.</summary>
    internal static async Task<IReadOnlyDictionary<string, Node>> ReadNodesAsync(LabState state, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        var result = new Dictionary<string, Node>(StringComparer.Ordinal);
        if (state.Store == "sqlite" && (state.StorePath is null || !File.Exists(state.StorePath)))
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
        var store = await OpenStoreAsync(state, cancellationToken).ConfigureAwait(false);
        await using (store.ConfigureAwait(false))
        {
            await NetworkStore.WriteClusterAsync(store, file, cancellationToken).ConfigureAwait(false);
        }
    }
}
