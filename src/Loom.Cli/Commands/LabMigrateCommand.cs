using System.CommandLine;
using System.Net;
using Loom.Core.Migration;
using Loom.Lab.Migration;

namespace Loom.Cli.Commands;

/// <summary><c>loom lab migrate</c> (the migration guide in the lab, under a probe) and the probe process it starts per node.</summary>
internal static class LabMigrateCommand
{
    public static Command Migrate()
    {
        var node = new Option<string?>("--node") { Description = "Migrate only this node (after 'start' if the cluster is not migrating yet); no finalize." };
        var interval = new Option<int>("--probe-interval") { Description = "Milliseconds between the probe's requests, from every node.", DefaultValueFactory = _ => 100 };
        var noFinalize = new Option<bool>("--no-finalize") { Description = "Stop after the last node; the old network stays." };
        var service = new Option<string>("--service") { Description = "The Service the probe requests (namespace/name).", DefaultValueFactory = _ => "default/webpod" };
        var cmd = new Command("migrate",
            "Move the lab from its network to the Cilium-style one node by node (start, cordon, drain, label, restart, reboot, verify, uncordon; workers first), "
            + "then finalize, while a probe requests a Service's ClusterIP from every node; fails if any request failed or a node was rolled back.")
        {
            node, interval, noFinalize, service,
        };
        cmd.SetAction((parse, ct) => LabCommand.Guard(async () =>
        {
            if (parse.GetValue(interval) is < 10 or > 10_000)
            {
                await Console.Error.WriteLineAsync("loom lab migrate: --probe-interval must be 10..10000 ms").ConfigureAwait(false);
                return 2;
            }

            var state = LabCommand.Require(parse.GetValue(LabCommand.LabDir)!);
            var options = new LabMigrateOptions
            {
                Node = parse.GetValue(node),
                ProbeInterval = TimeSpan.FromMilliseconds(parse.GetValue(interval)),
                Finalize = !parse.GetValue(noFinalize),
                Service = parse.GetValue(service)!,
            };
            try
            {
                return await LabMigrate.RunAsync(state, options, Console.Out, ct).ConfigureAwait(false);
            }
            catch (MigrationRefusedException e)
            {
                await Console.Error.WriteLineAsync($"loom lab migrate: {e.Message}").ConfigureAwait(false);
                return 1;
            }
        }));
        return cmd;
    }

    /// <summary>The probe process: run by <c>lab migrate</c> inside each node's namespace and cgroup until stopped.</summary>
    public static Command Probe()
    {
        var http = new Option<string>("--http") { Description = "IP:PORT to GET / from.", Required = true };
        var dns = new Option<string?>("--dns") { Description = "IP:PORT of the DNS server to ask." };
        var name = new Option<string>("--name") { Description = "The name to look up.", DefaultValueFactory = _ => "kubernetes.default.svc.cluster.local" };
        var interval = new Option<int>("--interval") { Description = "Milliseconds between requests.", DefaultValueFactory = _ => 100 };
        var output = new Option<string>("--out") { Description = "File the results are appended to, a line each.", Required = true };
        var parent = new Option<int?>("--parent") { Description = "Stop when this process is gone (the 'lab migrate' that started the probe)." };
        var cmd = new Command("probe", "Request a ClusterIP and look up a name every interval, appending each result to a file (run by 'lab migrate').")
        {
            http, dns, name, interval, output, parent,
        };
        cmd.Hidden = true;
        cmd.SetAction(async (parse, ct) =>
        {
            if (!IPEndPoint.TryParse(parse.GetValue(http)!, out var target) || (parse.GetValue(dns) is { } d && !IPEndPoint.TryParse(d, out _)))
            {
                await Console.Error.WriteLineAsync("loom lab probe: --http and --dns take IP:PORT").ConfigureAwait(false);
                return 2;
            }

            var probe = new ProbeTarget(target, parse.GetValue(dns) is { } ds ? IPEndPoint.Parse(ds) : null, parse.GetValue(name)!)
            {
                Interval = TimeSpan.FromMilliseconds(Math.Max(10, parse.GetValue(interval))),
            };
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            if (parse.GetValue(parent) is { } owner)
            {
                _ = WatchParentAsync(owner, stop);
            }

            var writer = new StreamWriter(new FileStream(parse.GetValue(output)!, FileMode.Append, FileAccess.Write, FileShare.ReadWrite));
            await using (writer.ConfigureAwait(false))
            {
                await ProbeLoop.RunAsync(probe, writer, stop.Token).ConfigureAwait(false);
            }

            return 0;
        });
        return cmd;
    }

    // A probe whose 'lab migrate' was killed must not go on requesting for ever.
    private static async Task WatchParentAsync(int pid, CancellationTokenSource stop)
    {
        var token = stop.Token;
        while (!token.IsCancellationRequested && Loom.Lab.LabProcesses.IsAlive(pid))
        {
            await Task.Delay(500, CancellationToken.None).ConfigureAwait(false);
        }

        try
        {
            await stop.CancelAsync().ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            // the probe stopped on its own meanwhile
        }
    }
}
