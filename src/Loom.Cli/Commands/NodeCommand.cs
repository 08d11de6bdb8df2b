using System.CommandLine;
using Loom.Agent;
using Loom.Store;

namespace Loom.Cli.Commands;

/// <summary><c>loom node delete NAME --config FILE</c>: removes a node from the cluster, like <c>kubectl delete node</c>.</summary>
internal static class NodeCommand
{
    public static Command Create()
    {
        var name = new Argument<string>("name") { Description = "The node to remove." };
        var config = new Option<FileInfo>("--config") { Description = "An agent configuration naming the store.", Required = true };
        var delete = new Command("delete", "Remove a node: its object (peers drop their routes to it), its endpoints, its pod CIDR.") { name, config };
        delete.SetAction(async (parse, ct) =>
        {
            AgentConfig cfg;
            Loom.Core.Store.IStore store;
            try
            {
                cfg = AgentConfig.Load(parse.GetValue(config)!.FullName);
                // A bad store section (store.tls files, endpoints) is a config error like any other.
                store = await StoreOpener.OpenAsync(cfg.Store, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is AgentConfigException or StoreConfigException)
            {
                await Console.Error.WriteLineAsync($"loom node delete: {e.Message}").ConfigureAwait(false);
                return 2;
            }

            await using (store.ConfigureAwait(false))
            {
                var node = parse.GetValue(name)!;
                var existed = await NodeAgent.RemoveNodeAsync(store, node, ct).ConfigureAwait(false);
                Console.WriteLine(existed ? $"node \"{node}\" deleted" : $"node \"{node}\" not found (its endpoints and pod CIDR are released all the same)");
                return existed ? 0 : 1;
            }
        });
        var cfgName = new Argument<string>("name") { Description = "The node to configure." };
        var cfgConfig = new Option<FileInfo>("--config") { Description = "An agent configuration naming the store.", Required = true };
        var backend = new Option<string?>("--service-backend") { Description = "Service backend on this node: iptables, nftables or ebpf; 'cluster' to follow the cluster." };
        backend.AcceptOnlyFromAmong("iptables", "nftables", "ebpf", "cluster");
        var configure = new Command("config", "Override the cluster config on one node (the agent switches live), like a CiliumNodeConfig.") { cfgName, cfgConfig, backend };
        configure.SetAction(async (parse, ct) =>
        {
            AgentConfig cfg;
            Loom.Core.Store.IStore store;
            try
            {
                cfg = AgentConfig.Load(parse.GetValue(cfgConfig)!.FullName);
                store = await StoreOpener.OpenAsync(cfg.Store, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is AgentConfigException or StoreConfigException)
            {
                await Console.Error.WriteLineAsync($"loom node config: {e.Message}").ConfigureAwait(false);
                return 2;
            }

            await using (store.ConfigureAwait(false))
            {
                var node = parse.GetValue(cfgName)!;
                var value = parse.GetValue(backend);
                Loom.Core.Model.ServiceProxyMode? kind = value is null or "cluster" ? null : Enum.Parse<Loom.Core.Model.ServiceProxyMode>(value, ignoreCase: true);
                await Loom.Core.Store.TypedStoreExtensions.PutAsync(store, Loom.Core.Store.Kinds.NodeConfig,
                    new Loom.Core.Model.NodeConfig { Node = node, ServiceBackend = kind }, cancellationToken: ct).ConfigureAwait(false);
                Console.WriteLine($"node \"{node}\": service backend {(kind is null ? "follows the cluster" : value)}");
                return 0;
            }
        });
        return new Command("node", "Cluster nodes.") { delete, configure };
    }
}
