using System.CommandLine;
using Loom.Agent;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Selection;
using Loom.Core.Store;
using Loom.Core.Validation;

namespace Loom.Cli.Commands;

/// <summary>
/// <c>loom node delete|label|config</c>: nodes in the store, like <c>kubectl delete node</c>, <c>kubectl label node</c>
/// and a CiliumNodeConfig.
/// </summary>
internal static class NodeCommand
{
    public static Command Create() => new("node", "Cluster nodes.") { Delete(), Label(), Configure() };

    private static Command Delete()
    {
        var name = new Argument<string>("name") { Description = "The node to remove." };
        var config = CliStore.ConfigOption();
        var delete = new Command("delete", "Remove a node: its object (peers drop their routes to it), its endpoints, its pod CIDR.") { name, config };
        delete.SetAction((parse, ct) => NetworkCommand.WithStore("loom node delete", parse.GetValue(config)!, async store =>
        {
            var node = parse.GetValue(name)!;
            var existed = await NodeAgent.RemoveNodeAsync(store, node, ct).ConfigureAwait(false);
            Console.WriteLine(existed ? $"node \"{node}\" deleted" : $"node \"{node}\" not found (its endpoints and pod CIDR are released all the same)");
            return existed ? 0 : 1;
        }, ct));
        return delete;
    }

    private static Command Label()
    {
        var name = new Argument<string>("name") { Description = "The node to label." };
        var changes = new Argument<string[]>("labels") { Description = "KEY=VALUE to set, KEY- to remove.", Arity = ArgumentArity.OneOrMore };
        var config = CliStore.ConfigOption();
        var cmd = new Command("label", "Set or remove node labels (NodeConfig nodeSelectors match them), like kubectl label node.") { name, changes, config };
        cmd.SetAction(async (parse, ct) =>
        {
            if (await ParseLabelsAsync("loom node label", parse.GetValue(changes)!).ConfigureAwait(false) is not { } labelChanges)
            {
                return 2;
            }

            return await NetworkCommand.WithStore("loom node label", parse.GetValue(config)!, async store =>
            {
                var node = parse.GetValue(name)!;
                var updated = await store.UpdateAsync(Kinds.Node, node, n => n with { Labels = labelChanges.ApplyTo(n.Labels) }, ct).ConfigureAwait(false);
                if (updated is null)
                {
                    await Console.Error.WriteLineAsync($"loom node label: node \"{node}\" not found (is its agent running?)").ConfigureAwait(false);
                    return 1;
                }

                Console.WriteLine($"node/{node} labeled");
                return 0;
            }, ct).ConfigureAwait(false);
        });
        return cmd;
    }

    /// <summary>KEY=VALUE / KEY- arguments, or null after printing each bad one (the caller's exit code 2).</summary>
    internal static async Task<LabelChanges?> ParseLabelsAsync(string verb, IEnumerable<string> arguments)
    {
        var errors = new List<FieldError>();
        var changes = LabelChanges.Parse(arguments, errors);
        foreach (var e in errors)
        {
            await Console.Error.WriteLineAsync($"{verb}: {e}").ConfigureAwait(false);
        }

        return changes;
    }

    private static Command Configure()
    {
        var name = new Argument<string>("name") { Description = "The node to configure." };
        var config = CliStore.ConfigOption();
        var backend = new Option<string?>("--service-backend") { Description = "Service backend on this node: iptables, nftables or ebpf; 'cluster' to follow the cluster." };
        backend.AcceptOnlyFromAmong("iptables", "nftables", "ebpf", "cluster");
        var network = new Option<string?>("--network") { Description = "The node's primary network (its new pods join it); 'cluster' for the cluster's default." };
        var selector = new Option<string?>("--node-selector")
        {
            Description = "KEY=VALUE[,KEY=VALUE...]: apply to every node with these labels instead (NAME then only names the config); '' for the node NAME alone.",
        };
        var cmd = new Command("config", "Override the cluster config on one node (the agent switches live), like a CiliumNodeConfig; only the options given change.")
        {
            name, config, backend, network, selector,
        };
        cmd.SetAction(async (parse, ct) =>
        {
            var backendValue = parse.GetValue(backend);
            var networkValue = parse.GetValue(network);
            var selectorValue = parse.GetValue(selector);
            if (backendValue is null && networkValue is null && selectorValue is null)
            {
                await Console.Error.WriteLineAsync("loom node config: nothing to change: give --service-backend, --network or --node-selector").ConfigureAwait(false);
                return 2;
            }

            LabelSelector? nodeSelector = null;
            if (selectorValue is { Length: > 0 })
            {
                var labels = new Dictionary<string, string>(StringComparer.Ordinal);
                var errors = new List<FieldError>();
                foreach (var pair in selectorValue.Split(','))
                {
                    var eq = pair.IndexOf('=', StringComparison.Ordinal);
                    if (eq <= 0)
                    {
                        errors.Add(FieldError.Invalid("nodeSelector", pair, "must be KEY=VALUE"));
                        continue;
                    }

                    labels[pair[..eq]] = pair[(eq + 1)..];
                }

                nodeSelector = errors.Count == 0 ? LabelSelector.Create(labels, [], "nodeSelector", errors) : null;
                if (errors.Count > 0)
                {
                    foreach (var e in errors)
                    {
                        await Console.Error.WriteLineAsync($"loom node config: {e}").ConfigureAwait(false);
                    }

                    return 2;
                }
            }

            return await NetworkCommand.WithStore("loom node config", parse.GetValue(config)!, async store =>
            {
                var node = parse.GetValue(name)!;
                var existing = await store.GetAsync(Kinds.NodeConfig, node, ct).ConfigureAwait(false);
                var updated = existing?.Value ?? new NodeConfig { Node = node };
                if (backendValue is not null)
                {
                    updated = updated with { ServiceBackend = backendValue == "cluster" ? null : Enum.Parse<ServiceProxyMode>(backendValue, ignoreCase: true) };
                }

                if (networkValue is not null)
                {
                    updated = updated with { Network = networkValue == "cluster" ? null : networkValue };
                }

                if (selectorValue is not null)
                {
                    updated = updated with { NodeSelector = nodeSelector };
                }

                await NetworkStore.PutNodeConfigAsync(store, updated, existing?.Revision ?? 0, ct).ConfigureAwait(false);
                Console.WriteLine($"node \"{node}\": service backend {(updated.ServiceBackend is { } b ? NetworkYaml.Wire(b) : "follows the cluster")}, "
                    + $"primary network {updated.Network ?? "the cluster's default"}"
                    + (updated.NodeSelector is { } s ? $"; applies to the nodes labelled {s}" : ""));
                return 0;
            }, ct).ConfigureAwait(false);
        });
        return cmd;
    }
}
