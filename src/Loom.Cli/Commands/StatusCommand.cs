using System.CommandLine;
using System.Text.Json;
using Loom.Core.AgentApi;

namespace Loom.Cli.Commands;

/// <summary><c>loom status</c>: the node agent's health, as seen through its socket (like <c>cilium status</c>).</summary>
internal static class StatusCommand
{
    public const string DefaultSocket = "/run/loom/agent.sock";

    public static Command Create()
    {
        var socket = new Option<string>("--socket") { Description = "The agent's socket.", DefaultValueFactory = _ => DefaultSocket };
        var output = new Option<string>("--output", "-o") { Description = "Output format: text or json.", DefaultValueFactory = _ => "text" };
        output.AcceptOnlyFromAmong("text", "json");
        var cmd = new Command("status", "Show the node agent's health, pod CIDR, IPAM use, tunnel peers and endpoints.") { socket, output };
        cmd.SetAction(async (parse, ct) =>
        {
            var path = parse.GetValue(socket)!;
            AgentResponse response;
            try
            {
                response = await AgentClient.SendAsync(path, new AgentRequest { Op = "status" }, TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException)
            {
                await Console.Error.WriteLineAsync($"loom status: no agent answers at {path}: {e.Message}").ConfigureAwait(false);
                return 1;
            }

            if (response.Status is not { } status)
            {
                await Console.Error.WriteLineAsync($"loom status: {response.Error}").ConfigureAwait(false);
                return 1;
            }

            if (parse.GetValue(output) == "json")
            {
                Console.WriteLine(JsonSerializer.Serialize(response, CliJsonContext.Default.AgentResponse));
            }
            else
            {
                Print(status, Console.Out, Ansi.Enabled);
            }

            return status.Healthy ? 0 : 1;
        });
        return cmd;
    }

    internal static void Print(AgentStatus s, TextWriter w, bool colour)
    {
        var c = new Ansi(colour);
        w.WriteLine($"{"Node:",-14}{c.Bold(s.Node)}   {(s.Healthy ? c.Green("OK") : c.Red("unhealthy"))}");
        w.WriteLine($"{"Store:",-14}{s.Store}");
        w.WriteLine($"{"Underlay:",-14}{s.UnderlayInterface} {s.UnderlayIp}");
        w.WriteLine($"{"PodCIDR:",-14}{s.PodCidr}");
        w.WriteLine($"{"IPAM:",-14}{s.IpamUsed}/{s.IpamCapacity} allocated");
        w.WriteLine($"{"Routing:",-14}{s.RoutingMode} (vxlan {s.TunnelDevice}, VTEP MAC {s.VtepMac})");
        w.WriteLine($"{"IP masq:",-14}{(s.IpMasq ? "enabled" : "disabled")}");
        w.WriteLine($"{"Syncs:",-14}{s.Syncs}, last {s.LastSync:HH:mm:ss} UTC, up since {s.Started:HH:mm:ss} UTC");
        w.WriteLine($"Tunnel peers: {s.Peers.Count}");
        Table(w, c, ["NODE", "POD CIDR", "UNDERLAY IP", "VTEP MAC"], s.Peers.Select(p => new[] { p.Node, p.PodCidr, p.UnderlayIp, p.VtepMac }));
        w.WriteLine($"Endpoints: {s.Endpoints.Count}");
        Table(w, c, ["NAMESPACE", "NAME", "IPS", "CONTAINER"], s.Endpoints.Select(e => new[] { e.Namespace, e.Name, string.Join(",", e.Ips), e.ContainerId[..Math.Min(12, e.ContainerId.Length)] }));
    }

    internal static void Table(TextWriter w, Ansi c, string[] header, IEnumerable<string[]> rows)
    {
        var all = rows.ToList();
        if (all.Count == 0)
        {
            return;
        }

        var widths = header.Select((h, i) => Math.Max(h.Length, all.Max(r => r[i].Length)) + 3).ToArray();
        w.WriteLine("  " + c.Dim(string.Concat(header.Select((h, i) => h.PadRight(widths[i]))).TrimEnd()));
        foreach (var r in all)
        {
            w.WriteLine("  " + string.Concat(r.Select((v, i) => v.PadRight(widths[i]))).TrimEnd());
        }
    }
}
