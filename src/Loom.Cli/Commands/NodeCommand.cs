using System.CommandLine;
using Loom.Agent;

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
            try
            {
                cfg = AgentConfig.Load(parse.GetValue(config)!.FullName);
            }
            catch (AgentConfigException e)
            {
                await Console.Error.WriteLineAsync($"loom node delete: {e.Message}").ConfigureAwait(false);
                return 2;
            }

            var store = await NodeAgent.OpenStoreAsync(cfg.Store, ct).ConfigureAwait(false);
            await using (store.ConfigureAwait(false))
            {
                var node = parse.GetValue(name)!;
                var existed = await NodeAgent.RemoveNodeAsync(store, node, ct).ConfigureAwait(false);
                Console.WriteLine(existed ? $"node \"{node}\" deleted" : $"node \"{node}\" not found (its endpoints and pod CIDR are released all the same)");
                return existed ? 0 : 1;
            }
        });
        return new Command("node", "Cluster nodes.") { delete };
    }
}
