using System.CommandLine;
using System.Globalization;
using Loom.Core.AgentApi;
using Loom.Core.Model;
using Loom.Core.Policy;
using Loom.Core.Store;

namespace Loom.Cli.Commands;

/// <summary>
/// <c>loom policy list</c>, <c>loom identity list</c> (from the store: an agent config's, else the running lab's) and
/// <c>loom explain policy NS/POD</c> (from the agent of the pod's node: what it compiled and what its BPF maps hold).
/// </summary>
internal static class PolicyCommand
{
    public static Command Policies()
    {
        var config = StoreOption();
        var ns = new Option<string?>("--namespace", "-n") { Description = "Only this namespace (default: all)." };
        var list = new Command("list", "NetworkPolicies in the store: what each selects and allows (kubectl-like columns).") { config, ns, LabCommand.LabDir };
        list.SetAction((parse, ct) => WithStoreAsync("loom policy list", parse.GetValue(config), parse.GetValue(LabCommand.LabDir)!, async store =>
        {
            var (items, _) = await store.ListValidAsync(Kinds.NetworkPolicy, (_, _) => { }, ct).ConfigureAwait(false);
            var wanted = parse.GetValue(ns);
            var rows = items.Select(i => i.Value).Where(p => wanted is null || p.Namespace == wanted)
                .OrderBy(p => p.Namespace, StringComparer.Ordinal).ThenBy(p => p.Name, StringComparer.Ordinal)
                .Select(p => new[]
                {
                    p.Namespace, p.Name, p.PodSelector.IsEmpty ? "<all pods>" : p.PodSelector.ToString() ?? "",
                    string.Join(",", p.EffectivePolicyTypes), Rules(p.Ingress.Count, p.EffectivePolicyTypes.Contains(PolicyType.Ingress)),
                    Rules(p.Egress.Count, p.EffectivePolicyTypes.Contains(PolicyType.Egress)),
                }).ToList();
            if (rows.Count == 0)
            {
                Console.WriteLine("No network policies found.");
                return 0;
            }

            StatusCommand.Table(Console.Out, new Ansi(Ansi.Enabled), ["NAMESPACE", "NAME", "POD-SELECTOR", "TYPES", "INGRESS", "EGRESS"], rows);
            return 0;
        }, ct));
        return new Command("policy", "Network policies.") { list, Mode() };
    }

    /// <summary><c>loom policy mode default|always|never [--node N]</c>: policyEnforcementMode, switched live by the agents.</summary>
    private static Command Mode()
    {
        var config = StoreOption();
        var mode = new Argument<string>("mode") { Description = "default (enforce on pods a policy selects), always (deny what no policy allows), never; with --node also 'cluster' (drop the node's override)." };
        mode.AcceptOnlyFromAmong("default", "always", "never", "cluster");
        var node = new Option<string?>("--node") { Description = "Set it for this node only (its NodeConfig override)." };
        var cmd = new Command("mode", "Set policyEnforcementMode for the cluster or one node; the agents switch live.") { mode, node, config, LabCommand.LabDir };
        cmd.SetAction((parse, ct) => WithStoreAsync("loom policy mode", parse.GetValue(config), parse.GetValue(LabCommand.LabDir)!, async store =>
        {
            var value = parse.GetValue(mode)!;
            PolicyEnforcementMode? wanted = value == "cluster" ? null : Enum.Parse<PolicyEnforcementMode>(value, ignoreCase: true);
            if (parse.GetValue(node) is { } name)
            {
                var existing = await store.GetAsync(Kinds.NodeConfig, name, ct).ConfigureAwait(false);
                var updated = (existing?.Value ?? new NodeConfig { Node = name }) with { PolicyEnforcementMode = wanted };
                var put = await store.PutAsync(Kinds.NodeConfig, updated, existing?.Revision ?? 0, cancellationToken: ct).ConfigureAwait(false);
                if (!put.Succeeded)
                {
                    await Console.Error.WriteLineAsync($"loom policy mode: nodeconfig/{name} changed meanwhile; run it again").ConfigureAwait(false);
                    return 1;
                }

                Console.WriteLine($"node \"{name}\": policyEnforcementMode {(wanted is null ? "follows the cluster" : value)}");
                return 0;
            }

            if (wanted is not { } clusterMode)
            {
                await Console.Error.WriteLineAsync("loom policy mode: 'cluster' needs --node (the cluster's own mode is default, always or never)").ConfigureAwait(false);
                return 2;
            }

            var changed = await store.UpdateAsync(Kinds.ClusterConfig, "cluster", c => c with { PolicyEnforcementMode = clusterMode }, ct).ConfigureAwait(false);
            if (changed is null)
            {
                await Console.Error.WriteLineAsync("loom policy mode: the store has no cluster config (config/cluster)").ConfigureAwait(false);
                return 1;
            }

            Console.WriteLine($"cluster: policyEnforcementMode {value}");
            return 0;
        }, ct));
        return cmd;
    }

    public static Command Identities()
    {
        var config = StoreOption();
        var list = new Command("list", "Security identities: the number each distinct label set has cluster-wide, and the reserved ones.") { config, LabCommand.LabDir };
        list.SetAction((parse, ct) => WithStoreAsync("loom identity list", parse.GetValue(config), parse.GetValue(LabCommand.LabDir)!, async store =>
        {
            var (items, _) = await store.ListValidAsync(Kinds.Identity, (_, _) => { }, ct).ConfigureAwait(false);
            var rows = new List<string[]>
            {
                new[] { ReservedIdentity.Host.ToString(CultureInfo.InvariantCulture), "reserved:host" },
                new[] { ReservedIdentity.World.ToString(CultureInfo.InvariantCulture), "reserved:world" },
                new[] { ReservedIdentity.RemoteNode.ToString(CultureInfo.InvariantCulture), "reserved:remote-node" },
                new[] { ReservedIdentity.KubeDns.ToString(CultureInfo.InvariantCulture), "reserved:kube-dns (k8s-app=kube-dns in kube-system)" },
            };
            rows.AddRange(items.Select(i => i.Value).OrderBy(i => i.Id).Select(i => new[]
            {
                i.Id.ToString(CultureInfo.InvariantCulture),
                string.Join(" ", i.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}")),
            }));
            StatusCommand.Table(Console.Out, new Ansi(Ansi.Enabled), ["ID", "LABELS"], rows);
            return 0;
        }, ct));
        return new Command("identity", "Security identities.") { list };
    }

    public static Command Explain()
    {
        var name = new Argument<string>("namespace/pod") { Description = "The pod, e.g. x/a (default namespace when no slash)." };
        var socket = AgentSocket.SocketOption();
        var node = AgentSocket.NodeOption();
        var cmd = new Command("policy", "The policies that select a pod, the peers and ports they allow, and the BPF entries on its node.") { name, socket, node, LabCommand.LabDir };
        cmd.SetAction(async (parse, ct) =>
        {
            var key = parse.GetValue(name)!;
            if (!key.Contains('/', StringComparison.Ordinal))
            {
                key = "default/" + key;
            }

            var nodeName = parse.GetValue(node);
            var labDir = parse.GetValue(LabCommand.LabDir)!;
            if (nodeName is null && parse.GetValue(socket) is null && Lab.Lab.Load(labDir) is { } state)
            {
                // In the lab the pod's node is known: its agent holds the pod's maps.
                var store = await Lab.Lab.OpenStoreAsync(state, ct).ConfigureAwait(false);
                await using (store.ConfigureAwait(false))
                {
                    nodeName = (await store.GetAsync(Kinds.Endpoint, key, ct).ConfigureAwait(false))?.Value.Node;
                }

                if (nodeName is null)
                {
                    await Console.Error.WriteLineAsync($"loom explain policy: no endpoint {key} in the lab").ConfigureAwait(false);
                    return 1;
                }
            }

            var response = await AgentSocket.AskAsync("loom explain policy", parse.GetValue(socket), nodeName, labDir,
                new AgentRequest { Op = "explain-policy", Pod = key }, ct).ConfigureAwait(false);
            if (response?.Text is not { } text)
            {
                return 1;
            }

            Console.Write(text);
            return 0;
        });
        return cmd;
    }

    private static string Rules(int count, bool isolates) => isolates ? (count == 0 ? "deny all" : $"{count} rule(s)") : "-";

    private static Option<FileInfo?> StoreOption() => new("--config") { Description = "An agent configuration naming the store (default: the running lab's store)." };

    private static async Task<int> WithStoreAsync(string verb, FileInfo? config, string labDir, Func<IStore, Task<int>> action, CancellationToken ct)
    {
        if (config is not null)
        {
            return await NetworkCommand.WithStore(verb, config, action, ct).ConfigureAwait(false);
        }

        if (Lab.Lab.Load(labDir) is not { } state)
        {
            await Console.Error.WriteLineAsync($"{verb}: give --config (an agent configuration naming the store); no lab is up").ConfigureAwait(false);
            return 2;
        }

        var store = await Lab.Lab.OpenStoreAsync(state, ct).ConfigureAwait(false);
        await using (store.ConfigureAwait(false))
        {
            return await action(store).ConfigureAwait(false);
        }
    }
}
