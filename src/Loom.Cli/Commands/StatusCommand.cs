using System.CommandLine;
using System.Text.Json;
using Loom.Core.AgentApi;

namespace Loom.Cli.Commands;

/// <summary><c>loom status</c>: the node agent's health, as seen through its socket (like <c>cilium status</c>).</summary>
internal static class StatusCommand
{
    public static Command Create()
    {
        var socket = AgentSocket.SocketOption();
        var node = AgentSocket.NodeOption();
        var output = new Option<string>("--output", "-o") { Description = "Output format: text or json.", DefaultValueFactory = _ => "text" };
        output.AcceptOnlyFromAmong("text", "json");
        var cmd = new Command("status", "Show the node agent's health, pod CIDR, IPAM use, tunnel peers and endpoints.") { socket, node, output };
        cmd.SetAction(parse =>
        {
            var response = AgentSocket.AskStatus(parse.GetValue(socket), parse.GetValue(node));
            if (response?.Status is not { } status)
            {
                return 1;
            }

            if (parse.GetValue(output) == "json")
            {
                Console.WriteLine(JsonSerializer.Serialize(response, CliJsonContext.Default.StatusReply));
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
        w.WriteLine($"{"Store:",-14}" + (s.StoreReachable
            ? $"reachable ({s.Store})"
            : c.Red($"unreachable since {s.StoreUnreachableSince:yyyy-MM-ddTHH:mm:ssZ} ({(s.LastSync - (s.StoreUnreachableSince ?? s.LastSync)).TotalSeconds:0} s)") + $": {s.StoreError} ({s.Store})"));
        w.WriteLine($"{"Underlay:",-14}{s.UnderlayInterface} {s.UnderlayIp}");
        w.WriteLine($"{"PodCIDR:",-14}{s.PodCidr}");
        w.WriteLine($"{"IPAM:",-14}{s.IpamUsed}/{s.IpamCapacity} allocated");
        w.WriteLine($"{"Routing:",-14}{s.RoutingMode}" + (s.TunnelDevice.Length > 0 ? $" (vxlan {s.TunnelDevice}, VTEP MAC {s.VtepMac})" : $" (direct routes via {s.UnderlayInterface})"));
        // cilium status's two lines, for the primary network (what new pods get).
        if (s.Networks.FirstOrDefault(n => n.Primary) is { } primary)
        {
            w.WriteLine($"{"Host Routing:",-14}{primary.HostRouting}");
            w.WriteLine($"{"Masquerading:",-14}{primary.Masquerading}");
        }

        w.WriteLine($"{"IP masq:",-14}{(s.IpMasq ? "enabled" : "disabled")}");
        w.WriteLine($"{"Services:",-14}{s.Services} port(s) by {s.ServiceBackend} ({s.ServiceSyncs} syncs)");
        w.WriteLine($"{"KubeProxyReplacement:",-14} {(s.ServiceBackend == "ebpf" ? c.Green("True") : "False")}   [socket LB: {(s.SocketLbCgroup.Length > 0 ? "enabled, cgroup " + s.SocketLbCgroup : "disabled")}]");
        if (s.BpfMaps.Length > 0)
        {
            w.WriteLine($"{"BPF maps:",-14}{s.BpfMaps}");
        }

        w.WriteLine($"{"Policy:",-14}enforcement {s.PolicyEnforcement}; {s.Policies} NetworkPolicies, {s.Identities} identities; "
                    + $"{s.PolicyEndpoints} local endpoints, {s.PolicyIngressEnforced} isolated for ingress, {s.PolicyEgressEnforced} for egress");
        w.WriteLine($"{"Syncs:",-14}{s.Syncs}, last {s.LastSync:HH:mm:ss} UTC, up since {s.Started:HH:mm:ss} UTC");
        w.WriteLine($"Controllers: {s.Controllers.Count(x => x.Healthy)}/{s.Controllers.Count} healthy");
        Table(w, c, ["NAME", "HEALTH", "PASSES", "STATE"], s.Controllers.Select(x => new[]
        {
            x.Name, x.Healthy ? "ok" : "failing", x.Passes.ToString(System.Globalization.CultureInfo.InvariantCulture), x.Summary + (x.LastError is null ? "" : $" (last error: {x.LastError})"),
        }));
        w.WriteLine($"Networks: {s.Networks.Count}, primary {s.PrimaryNetwork}");
        Table(w, c, ["NAME", "BLOCK", "IPAM", "ROUTING", "HOST ROUTING", "MASQUERADING", "CNI CONFIG"], s.Networks.Select(n => new[]
        {
            n.Name + (n.Primary ? " *" : "") + (n.Ready ? "" : " (not ready)"), n.Block, $"{n.IpamUsed}/{n.IpamCapacity}", $"{n.Plumbing}, {n.Routing}",
            n.HostRouting, n.Masquerading, n.CniConfig.Length > 0 ? Path.GetFileName(n.CniConfig) : "-",
        }));
        w.WriteLine($"Peers: {s.Peers.Count}");
        Table(w, c, ["NETWORK", "NODE", "POD CIDR", "UNDERLAY IP", "VTEP MAC"], s.Peers.Select(p => new[] { p.Network, p.Node, p.PodCidr, p.UnderlayIp, p.VtepMac }));
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
