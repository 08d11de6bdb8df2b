using System.CommandLine;
using Loom.Core.AgentApi;

namespace Loom.Cli.Commands;

/// <summary>
/// <c>loom service list</c> and <c>loom explain service NS/NAME</c>: Services as a node programs them, and the exact
/// rules behind one, the way the scenario greps iptables-save for KUBE-SVC and KUBE-SEP.
/// </summary>
internal static class ServiceCommand
{
    public static Command List()
    {
        var socket = AgentSocket.SocketOption();
        var node = AgentSocket.NodeOption();
        var list = new Command("list", "Services programmed on the node: type, node ports, traffic policies and endpoints, local ones marked (kubectl-like columns).") { socket, node };
        list.SetAction(async (parse, ct) =>
        {
            var response = await AgentSocket.AskAsync("loom service list", parse.GetValue(socket), parse.GetValue(node), new AgentRequest { Op = "services" }, ct).ConfigureAwait(false);
            if (response?.Services is not { } services)
            {
                return 1;
            }

            if (services.Count == 0)
            {
                Console.WriteLine("No services found.");
                return 0;
            }

            var rows = services.GroupBy(s => (s.Namespace, s.Name)).Select(g => new[]
            {
                g.Key.Namespace, g.Key.Name, g.First().Type, g.First().ClusterIp, g.First().ExternalIpText,
                string.Join(",", g.Select(s => s.PortText)),
                g.First().PolicyText,
                g.SelectMany(s => s.EndpointTexts).Distinct().DefaultIfEmpty("<none>").Aggregate((a, b) => a + "," + b),
            });
            StatusCommand.Table(Console.Out, new Ansi(Ansi.Enabled), ["NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "POLICY", "ENDPOINTS"], rows);
            return 0;
        });
        return new Command("service", "Services.") { list };
    }

    public static Command Explain()
    {
        var name = new Argument<string>("namespace/name") { Description = "The service, e.g. default/webpod." };
        var socket = AgentSocket.SocketOption();
        var node = AgentSocket.NodeOption();
        var service = new Command("service", "The frontend, its backends, and the rules or map elements a node programs for it.") { name, socket, node };
        service.SetAction(async (parse, ct) =>
        {
            var key = parse.GetValue(name)!;
            if (!key.Contains('/', StringComparison.Ordinal))
            {
                key = "default/" + key;
            }

            var response = await AgentSocket.AskAsync("loom explain service", parse.GetValue(socket), parse.GetValue(node),
                new AgentRequest { Op = "explain-service", Service = key }, ct).ConfigureAwait(false);
            if (response?.Text is not { } text)
            {
                return 1;
            }

            Console.Write(text);
            return 0;
        });
        return new Command("explain", "Explain what Loom programmed for an object.") { service, PolicyCommand.Explain() };
    }
}
