using System.CommandLine;
using Loom.Agent;

namespace Loom.Cli.Commands;

/// <summary><c>loom agent --node NAME --config FILE</c>: runs the node agent in the foreground until SIGTERM.</summary>
internal static class AgentCommand
{
    public static Command Create()
    {
        var node = new Option<string?>("--node") { Description = "Node name (overrides the config file)." };
        var config = new Option<FileInfo>("--config") { Description = "Agent configuration (JSON).", Required = true };
        var iface = new Option<string?>("--iface") { Description = "Underlay interface, like flannel's --iface (overrides the config file)." };
        var ipMasq = new Option<bool?>("--ip-masq") { Description = "Masquerade pod traffic leaving the pod network, like flannel's --ip-masq." };
        var cmd = new Command("agent", "Run the node agent: register the node, program the overlay, serve loom-cni.")
        {
            node, config, iface, ipMasq,
        };
        cmd.SetAction(async (parse, ct) =>
        {
            AgentConfig cfg;
            try
            {
                cfg = AgentConfig.Load(parse.GetValue(config)!.FullName);
            }
            catch (AgentConfigException e)
            {
                await Console.Error.WriteLineAsync($"loom agent: {e.Message}").ConfigureAwait(false);
                return 2;
            }

            cfg.Node = parse.GetValue(node) ?? cfg.ResolveNode();
            cfg.Iface = parse.GetValue(iface) ?? cfg.Iface;
            cfg.IpMasq = parse.GetValue(ipMasq) ?? cfg.IpMasq;
            if (string.IsNullOrEmpty(cfg.Node))
            {
                await Console.Error.WriteLineAsync("loom agent: no node name: pass --node or set \"node\" in the config (with \"source\": \"kubernetes\", NODE_NAME also)").ConfigureAwait(false);
                return 2;
            }

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(
                System.Runtime.InteropServices.PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stop.Cancel(); });
            return await NodeAgent.RunAsync(cfg, Console.Out, stop.Token).ConfigureAwait(false);
        });
        return cmd;
    }
}
