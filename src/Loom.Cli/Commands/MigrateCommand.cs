using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Loom.Core.Migration;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Store;

namespace Loom.Cli.Commands;

/// <summary>
/// <c>loom migrate start|status|rollback|finalize</c>: the store's half of a live migration from one network to another,
/// node by node (the guide Cilium publishes for moving off Flannel). Every step is recorded, so each command resumes.
/// </summary>
internal static class MigrateCommand
{
    public static Command Create() => new("migrate", "Move the cluster to another network node by node: start, status, rollback, finalize.")
    {
        Start(), Node(), Status(), Rollback(), Finalize(),
    };

    private static Command Start()
    {
        var file = new Option<FileInfo>("--filename", "-f") { Description = "A network file (one network) replacing the default migration network (cilium, 10.245.0.0/16, routed, VXLAN loom_vxlan port 8473 VNI 2)." };
        var config = CliStore.ConfigOption();
        var cmd = new Command("start", "Add the migration network beside the current one and the NodeConfig that makes it primary on labelled nodes.") { file, config };
        cmd.SetAction(async (parse, ct) =>
        {
            Network? network = null;
            if (parse.GetValue(file) is { } path)
            {
                try
                {
                    var networks = ClusterFileParser.ParseNetworks(await File.ReadAllTextAsync(path.FullName, ct).ConfigureAwait(false));
                    if (networks.Count != 1)
                    {
                        await Console.Error.WriteLineAsync($"loom migrate start: {path}: holds {networks.Count} networks; the migration moves to one").ConfigureAwait(false);
                        return 2;
                    }

                    network = networks[0];
                }
                catch (Exception e) when (e is ClusterFileException or IOException or UnauthorizedAccessException)
                {
                    await Console.Error.WriteLineAsync($"loom migrate start: {path}: {e.Message.Replace("\n", $"\n{path}: ", StringComparison.Ordinal)}").ConfigureAwait(false);
                    return 2;
                }
            }

            return await WithStore("loom migrate start", parse.GetValue(config)!, async store =>
            {
                var m = await MigrationStart.RunAsync(store, network, TimeProvider.System, ct).ConfigureAwait(false);
                Console.WriteLine($"network/{m.To} ready beside network/{m.From}; nodeconfig/{ClusterMigration.NodeConfigName} makes it primary on nodes labelled {ClusterMigration.NodeLabel}={ClusterMigration.NodeLabelValue}");
                Console.WriteLine($"policyEnforcementMode never; migration started with {m.Nodes.Count} node(s) pending");
                return 0;
            }, ct).ConfigureAwait(false);
        });
        return cmd;
    }

    /// <summary>
    /// The host steps need a driver: the lab's nodes have one (<see cref="Loom.Lab.Migration.LabMigrationHost"/>); a real
    /// host's (cordon and drain through Kubernetes, the agent's systemd unit, a reboot) is not written yet.
    /// </summary>
    private static Command Node()
    {
        var name = new Argument<string>("node") { Description = "The node to move to the migration network." };
        var timeout = new Option<int>("--timeout") { Description = "Give up after this many seconds (the record keeps the step reached: run again to resume).", DefaultValueFactory = _ => 600 };
        var cmd = new Command("node", "Move one node of the lab: cordon, drain, label, restart its agent, reboot, verify (rolled back if it fails), uncordon; under the lab's probe.")
        {
            name, timeout, LabCommand.LabDir,
        };
        cmd.SetAction((parse, ct) => LabCommand.Guard(async () =>
        {
            if (parse.GetValue(timeout) < 1)
            {
                await Console.Error.WriteLineAsync("loom migrate node: --timeout must be at least 1 (seconds)").ConfigureAwait(false);
                return 2;
            }

            var state = Loom.Lab.Lab.Load(parse.GetValue(LabCommand.LabDir)!);
            if (state is null)
            {
                await Console.Error.WriteLineAsync("loom migrate node: no lab is up; on real hosts the node steps are run by hand for now (see docs/migration.md)").ConfigureAwait(false);
                return 1;
            }

            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(TimeSpan.FromSeconds(parse.GetValue(timeout)));
            try
            {
                var options = new Loom.Lab.Migration.LabMigrateOptions { Node = parse.GetValue(name), Finalize = false, StartIfNeeded = false };
                return await Loom.Lab.Migration.LabMigrate.RunAsync(state, options, Console.Out, cts.Token).ConfigureAwait(false);
            }
            catch (MigrationRefusedException e)
            {
                await Console.Error.WriteLineAsync($"loom migrate node: {e.Message}").ConfigureAwait(false);
                return 1;
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                await Console.Error.WriteLineAsync($"loom migrate node: not done after {parse.GetValue(timeout)} s; run it again to resume (loom migrate status)").ConfigureAwait(false);
                return 1;
            }
        }));
        return cmd;
    }

    private static Command Status()
    {
        var config = CliStore.ConfigOption();
        var output = new Option<string>("--output", "-o") { Description = "text or json.", DefaultValueFactory = _ => "text" };
        output.AcceptOnlyFromAmong("text", "json");
        var cmd = new Command("status", "Per node: migration state, primary network, pods per network; and the cluster's pods on the target network.") { config, output };
        cmd.SetAction((parse, ct) => WithStore("loom migrate status", parse.GetValue(config)!, async store =>
        {
            var report = await MigrationStatusReport.ReadAsync(store, ct).ConfigureAwait(false);
            if (parse.GetValue(output) == "json")
            {
                Console.WriteLine(JsonSerializer.Serialize(report, MigrationJsonContext.Default.MigrationStatusReport));
                return 0;
            }

            Console.WriteLine(report.Migration is { } m
                ? $"Migration: {m.From} -> {m.To}, started {m.Started.ToString("u", CultureInfo.InvariantCulture)}" + Finalize(m)
                : "No migration.");
            StatusCommand.Table(Console.Out, new Ansi(Ansi.Enabled), ["NODE", "STATE", "STEP", "PRIMARY NETWORK", "PODS", "ERROR / ROLLBACK REASON"],
                report.Nodes.Select(n => new[]
                {
                    n.Node, NetworkYaml.Wire(n.State.Phase),
                    n.State.Step is { } s ? NetworkYaml.Wire(s) + (n.State.Done ? "" : " (not done)") : "",
                    n.PrimaryNetwork,
                    string.Join(" ", n.PodsPerNetwork.Select(p => $"{p.Key}={p.Value}")),
                    n.State.Error ?? (n.State.RollbackReason is { } r ? "rolled back: " + r : ""),
                }));
            Console.WriteLine(report.Summary);
            return 0;
        }, ct));
        return cmd;
    }

    private static Command Rollback()
    {
        var name = new Argument<string>("node") { Description = "The node to move back to the old network." };
        var config = CliStore.ConfigOption();
        var cmd = new Command("rollback", "Move a node back to the old network: its label removed, the old CNI config back, its agent restarted, uncordoned "
            + "(on a lab node every step; elsewhere the store's part, with the host steps printed).")
        {
            name, config, LabCommand.LabDir,
        };
        cmd.SetAction(async (parse, ct) =>
        {
            var node = parse.GetValue(name)!;
            // A store named with --config is a real cluster's: only the store's part runs there, even with a lab up.
            if (parse.GetResult(config) is not { Implicit: false } && Loom.Lab.Lab.Load(parse.GetValue(LabCommand.LabDir)!) is { } state)
            {
                return await LabCommand.Guard(async () =>
                {
                    try
                    {
                        var result = await Loom.Lab.Migration.LabMigrate.RollbackAsync(state, node, Console.Out, ct).ConfigureAwait(false);
                        Console.WriteLine($"node/{node} {NetworkYaml.Wire(result.Phase)}: its primary network is the old one again");
                        return 0;
                    }
                    catch (MigrationRefusedException e)
                    {
                        await Console.Error.WriteLineAsync($"loom migrate rollback: {e.Message}").ConfigureAwait(false);
                        return 1;
                    }
                }).ConfigureAwait(false);
            }

            return await WithStore("loom migrate rollback", parse.GetValue(config)!, async store =>
            {
                var hostSteps = await MigrationRollback.StoreOnlyAsync(store, node, ct).ConfigureAwait(false);
                Console.WriteLine($"node/{node} rolled back in the store (label {ClusterMigration.NodeLabel} removed: its primary network is the old one again)");
                Console.WriteLine("Still to do on the node's host:");
                foreach (var step in hostSteps)
                {
                    Console.WriteLine("  - " + MigrationPlan.Describe(step));
                }

                return 0;
            }, ct).ConfigureAwait(false);
        });
        return cmd;
    }

    private static Command Finalize()
    {
        var config = CliStore.ConfigOption();
        var cmd = new Command("finalize", "The end state: eBPF services, native routing, eBPF host routing and masquerade, the old network deleted.") { config };
        cmd.SetAction((parse, ct) => WithStore("loom migrate finalize", parse.GetValue(config)!, async store =>
        {
            var m = await MigrationRecord.ActiveAsync(store, ct).ConfigureAwait(false);
            await MigrationFinalize.RunAsync(store, step => Console.WriteLine(MigrationFinalize.Describe(step, m)), cancellationToken: ct).ConfigureAwait(false);
            return 0;
        }, ct));
        return cmd;
    }

    private static string Finalize(ClusterMigration m) => m.Finalize.Step is { } s
        ? $"; finalize: {NetworkYaml.Wire(s)}{(m.Finalize.Done ? "" : " (not done)")}{(m.Finalize.Error is { } e ? ": " + e : "")}"
        : "";

    // A refused migration step prints its reason and exits 1, as a refused network change does.
    private static Task<int> WithStore(string verb, FileInfo config, Func<IStore, Task<int>> action, CancellationToken ct) =>
        NetworkCommand.WithStore(verb, config, async store =>
        {
            try
            {
                return await action(store).ConfigureAwait(false);
            }
            catch (MigrationRefusedException e)
            {
                await Console.Error.WriteLineAsync($"{verb}: {e.Message}").ConfigureAwait(false);
                return 1;
            }
        }, ct);
}
