using System.CommandLine;
using System.Text.Json;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Store;

namespace Loom.Cli.Commands;

/// <summary>
/// <c>loom network list|get|apply|delete</c>: the cluster's pod networks in the store, as <c>kubectl</c> handles objects.
/// Every change is validated against the networks already stored and refused whole.
/// </summary>
internal static class NetworkCommand
{
    public static Command Create() => new("network", "The cluster's pod networks (podCIDR, plumbing, routing, host routing, masquerade).")
    {
        List(), Get(), Apply(), Delete(),
    };

    private static Command List()
    {
        var config = CliStore.ConfigOption();
        var cmd = new Command("list", "The networks, the cluster's default marked.") { config };
        cmd.SetAction((parse, ct) => WithStore("loom network list", parse.GetValue(config)!, async store =>
        {
            var networks = await NetworkStore.ListAsync(store, ct).ConfigureAwait(false);
            if (networks.Count == 0)
            {
                Console.WriteLine("No networks found.");
                return 0;
            }

            var cluster = (await store.GetAsync(Kinds.ClusterConfig, "cluster", ct).ConfigureAwait(false))?.Value ?? new ClusterConfig();
            StatusCommand.Table(Console.Out, new Ansi(Ansi.Enabled), ["NAME", "POD CIDR", "NODE MASK", "PLUMBING", "ROUTING", "HOST ROUTING", "MASQUERADE", "DEFAULT"],
                networks.Select(v => v.Value).Select(n => new[]
                {
                    n.Name, n.PodCidr.ToString(), "/" + n.NodeMaskSize, Wire(n.Plumbing), Routing(n), Wire(n.HostRouting), Wire(n.Masquerade),
                    n.Name == cluster.DefaultNetwork ? "*" : "",
                }));
            return 0;
        }, ct));
        return cmd;
    }

    private static Command Get()
    {
        var name = new Argument<string>("name") { Description = "The network, e.g. cilium." };
        var config = CliStore.ConfigOption();
        var output = new Option<string>("--output", "-o") { Description = "yaml (the network file's shape, for apply -f) or json (as stored).", DefaultValueFactory = _ => "yaml" };
        output.AcceptOnlyFromAmong("yaml", "json");
        var cmd = new Command("get", "One network.") { name, config, output };
        cmd.SetAction((parse, ct) => WithStore("loom network get", parse.GetValue(config)!, async store =>
        {
            var n = parse.GetValue(name)!;
            if (await store.GetAsync(Kinds.Network, n, ct).ConfigureAwait(false) is not { } network)
            {
                await Console.Error.WriteLineAsync($"loom network get: network \"{n}\" not found").ConfigureAwait(false);
                return 1;
            }

            Console.Write(parse.GetValue(output) == "json"
                ? JsonSerializer.Serialize(network.Value, Kinds.Network.TypeInfo) + "\n"
                : NetworkYaml.Write(network.Value));
            return 0;
        }, ct));
        return cmd;
    }

    private static Command Apply()
    {
        var file = new Option<FileInfo>("--filename", "-f") { Description = "A network file: one network per YAML document.", Required = true };
        var config = CliStore.ConfigOption();
        var cmd = new Command("apply", "Create or change networks; refused whole if any is invalid against the stored ones.") { file, config };
        cmd.SetAction(async (parse, ct) =>
        {
            IReadOnlyList<Network> networks;
            var path = parse.GetValue(file)!;
            try
            {
                networks = ClusterFileParser.ParseNetworks(await File.ReadAllTextAsync(path.FullName, ct).ConfigureAwait(false));
            }
            catch (Exception e) when (e is ClusterFileException or IOException or UnauthorizedAccessException)
            {
                await Console.Error.WriteLineAsync($"loom network apply: {path}: {e.Message.Replace("\n", $"\n{path}: ", StringComparison.Ordinal)}").ConfigureAwait(false);
                return 2;
            }

            return await WithStore("loom network apply", parse.GetValue(config)!, async store =>
            {
                foreach (var (n, outcome) in await NetworkStore.ApplyAsync(store, networks, ct).ConfigureAwait(false))
                {
                    Console.WriteLine($"network/{n} {outcome}");
                }

                return 0;
            }, ct).ConfigureAwait(false);
        });
        return cmd;
    }

    private static Command Delete()
    {
        var name = new Argument<string>("name") { Description = "The network to delete." };
        var config = CliStore.ConfigOption();
        var cmd = new Command("delete", "Delete a network no node config and not the cluster default names.") { name, config };
        cmd.SetAction((parse, ct) => WithStore("loom network delete", parse.GetValue(config)!, async store =>
        {
            var n = parse.GetValue(name)!;
            if (!await NetworkStore.DeleteAsync(store, n, ct).ConfigureAwait(false))
            {
                await Console.Error.WriteLineAsync($"loom network delete: network \"{n}\" not found").ConfigureAwait(false);
                return 1;
            }

            Console.WriteLine($"network/{n} deleted");
            return 0;
        }, ct));
        return cmd;
    }

    /// <summary>Runs <paramref name="action"/> on the store; a refused change prints its errors and exits 1, a bad config 2.</summary>
    internal static async Task<int> WithStore(string verb, FileInfo config, Func<IStore, Task<int>> action, CancellationToken ct)
    {
        var store = await CliStore.OpenAsync(verb, config, ct).ConfigureAwait(false);
        if (store is null)
        {
            return 2;
        }

        await using (store.ConfigureAwait(false))
        {
            try
            {
                return await action(store).ConfigureAwait(false);
            }
            catch (NetworkRefusedException e)
            {
                foreach (var error in e.Errors)
                {
                    await Console.Error.WriteLineAsync($"{verb}: {error}").ConfigureAwait(false);
                }

                return 1;
            }
        }
    }

    private static string Routing(Network n) => n.RoutingMode == RoutingMode.Native
        ? "native" + (n.AutoDirectNodeRoutes ? " (direct routes)" : "")
        : n.Tunnel is { } t ? $"{Wire(t.Protocol)} {t.Device} port {t.Port} vni {t.Vni}" : "tunnel";

    private static string Wire<T>(T value)
        where T : struct, Enum
        => NetworkYaml.Wire(value);
}
