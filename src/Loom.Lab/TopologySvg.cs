using System.Globalization;
using System.Net;
using System.Security;
using System.Text;
using Loom.Core.Cni;
using Loom.Core.Ipam;
using Loom.Core.Model;
using Loom.Core.Selection;
using Loom.Core.Store;

namespace Loom.Lab;

/// <summary>
/// A picture of the running lab (SVG, no dependencies): the underlay, the nodes with their pod CIDR, VTEP and
/// pods, the VXLAN tunnels between nodes, and each Service with arrows to its backends.
/// </summary>
public static class TopologySvg
{
    private const int NodeWidth = 330;
    private const int Gap = 40;
    private const int PodHeight = 34;

    public static async Task<string> RenderAsync(LabState state, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        var nodes = await Lab.ReadNodesAsync(state, cancellationToken).ConfigureAwait(false);
        IReadOnlyList<Service> services;
        IReadOnlyList<Endpoint> endpoints;
        var store = await Lab.OpenStoreAsync(state, cancellationToken).ConfigureAwait(false);
        await using (store.ConfigureAwait(false))
        {
            services = [.. (await store.ListAsync(Kinds.Service, cancellationToken).ConfigureAwait(false)).Items.Select(i => i.Value)];
            endpoints = [.. (await store.ListAsync(Kinds.Endpoint, cancellationToken).ConfigureAwait(false)).Items.Select(i => i.Value)];
        }

        return Render(state, nodes, services, endpoints);
    }

    public static string Render(LabState state, IReadOnlyDictionary<string, Node> nodes, IReadOnlyList<Service> services, IReadOnlyList<Endpoint> endpoints)
    {
        ArgumentNullException.ThrowIfNull(state);
        var maxPods = Math.Max(1, state.Nodes.Max(n => state.Pods.Count(p => p.Node == n.Name)));
        var nodeHeight = 126 + (maxPods * (PodHeight + 8));
        var servicesHeight = services.Count == 0 ? 0 : 70;
        var top = 60 + servicesHeight;
        var width = Gap + (state.Nodes.Count * (NodeWidth + Gap));
        var height = top + nodeHeight + 170;
        var sb = new StringBuilder();
        sb.Append(Inv($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"monospace\" font-size=\"12\">\n"));
        sb.Append("<defs><marker id=\"arrow\" markerWidth=\"10\" markerHeight=\"10\" refX=\"9\" refY=\"3\" orient=\"auto\"><path d=\"M0,0 L9,3 L0,6 z\" fill=\"#b45309\"/></marker></defs>\n");
        sb.Append(Inv($"<rect width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/>\n"));
        sb.Append(Inv($"<text x=\"{Gap}\" y=\"30\" font-size=\"18\" font-weight=\"bold\">Loom lab: {state.Nodes.Count} nodes, VXLAN overlay, {services.Count} service(s)</text>\n"));

        var podCenters = new Dictionary<string, (int X, int Y)>(StringComparer.Ordinal);
        var nodeBoxes = new List<(int X, int Y)>();
        for (var i = 0; i < state.Nodes.Count; i++)
        {
            var n = state.Nodes[i];
            var x = Gap + (i * (NodeWidth + Gap));
            nodeBoxes.Add((x, top));
            nodes.TryGetValue(n.Name, out var node);
            sb.Append(Inv($"<rect x=\"{x}\" y=\"{top}\" width=\"{NodeWidth}\" height=\"{nodeHeight}\" rx=\"8\" fill=\"#eff6ff\" stroke=\"#1d4ed8\" stroke-width=\"2\"/>\n"));
            sb.Append(Inv($"<text x=\"{x + 12}\" y=\"{top + 22}\" font-size=\"15\" font-weight=\"bold\">{Esc(n.Name)}{(node?.Ready == true ? "" : "  (NotReady)")}</text>\n"));
            sb.Append(Inv($"<text x=\"{x + 12}\" y=\"{top + 42}\">pod CIDR {Esc(node is { PodCidrs.Count: > 0 } ? node.PodCidrs[0].ToString() : "-")}</text>\n"));
            sb.Append(Inv($"<text x=\"{x + 12}\" y=\"{top + 60}\">{NetConf.DefaultBridgeName} {Esc(Gateway(node))} (gateway)</text>\n"));
            sb.Append(Inv($"<text x=\"{x + 12}\" y=\"{top + 78}\" fill=\"#7c3aed\">loom.1 VTEP {Esc(node?.VtepMac ?? "-")}</text>\n"));
            var y = top + 94;
            foreach (var p in state.Pods.Where(p => p.Node == n.Name).OrderBy(p => p.Name, StringComparer.Ordinal))
            {
                sb.Append(Inv($"<rect x=\"{x + 14}\" y=\"{y}\" width=\"{NodeWidth - 28}\" height=\"{PodHeight}\" rx=\"5\" fill=\"#dcfce7\" stroke=\"#15803d\"/>\n"));
                sb.Append(Inv($"<text x=\"{x + 24}\" y=\"{y + 15}\">{Esc(Trim(p.Namespace + "/" + p.Name, 36))}</text>\n"));
                sb.Append(Inv($"<text x=\"{x + 24}\" y=\"{y + 29}\" fill=\"#166534\">{Esc(p.Ip ?? "no IP")}</text>\n"));
                podCenters[p.Ip?.Split('/')[0] ?? p.Name] = (x + (NodeWidth / 2), y);
                y += PodHeight + 8;
            }

            // eth1 down to the underlay
            sb.Append(Inv($"<line x1=\"{x + (NodeWidth / 2)}\" y1=\"{top + nodeHeight}\" x2=\"{x + (NodeWidth / 2)}\" y2=\"{top + nodeHeight + 100}\" stroke=\"#374151\" stroke-width=\"2\"/>\n"));
            sb.Append(Inv($"<text x=\"{x + (NodeWidth / 2) + 6}\" y=\"{top + nodeHeight + 90}\">eth1 {Esc(n.Ip)}</text>\n"));
        }

        // VXLAN tunnels: one dashed curve between every pair of nodes, below the nodes, above the underlay.
        for (var a = 0; a < nodeBoxes.Count; a++)
        {
            for (var b = a + 1; b < nodeBoxes.Count; b++)
            {
                var xa = nodeBoxes[a].X + (NodeWidth / 2) + 30;
                var xb = nodeBoxes[b].X + (NodeWidth / 2) - 30;
                var y0 = top + nodeHeight;
                var dip = y0 + 18 + ((b - a) * 22);
                sb.Append(Inv($"<path d=\"M{xa},{y0} Q{(xa + xb) / 2},{dip + ((b - a) * 14)} {xb},{y0}\" stroke=\"#7c3aed\" stroke-width=\"1.5\" stroke-dasharray=\"6,4\" fill=\"none\"/>\n"));
            }
        }

        if (nodeBoxes.Count > 1)
        {
            sb.Append(Inv($"<text x=\"{nodeBoxes[^1].X + NodeWidth - 230}\" y=\"{top + nodeHeight + 20}\" fill=\"#7c3aed\">VXLAN tunnels: VNI 1, UDP 8472</text>\n"));
        }

        var uy = top + nodeHeight + 100;
        sb.Append(Inv($"<rect x=\"{Gap}\" y=\"{uy}\" width=\"{width - (2 * Gap)}\" height=\"26\" rx=\"4\" fill=\"#f3f4f6\" stroke=\"#374151\"/>\n"));
        sb.Append(Inv($"<text x=\"{Gap + 10}\" y=\"{uy + 17}\">underlay {Esc(state.UnderlayNetns)}: bridge, 192.168.10.0/24 (not connected to the machine)</text>\n"));

        // Services on top, arrows to their backends.
        for (var i = 0; i < services.Count; i++)
        {
            var s = services[i];
            var sx = Gap + (i * 260);
            var sy = 50;
            sb.Append(Inv($"<rect x=\"{sx}\" y=\"{sy}\" width=\"240\" height=\"44\" rx=\"6\" fill=\"#fef3c7\" stroke=\"#b45309\"/>\n"));
            sb.Append(Inv($"<text x=\"{sx + 10}\" y=\"{sy + 18}\" font-weight=\"bold\">svc {Esc(s.Namespace + "/" + s.Name)}</text>\n"));
            sb.Append(Inv($"<text x=\"{sx + 10}\" y=\"{sy + 35}\">{Esc(s.ClusterIp.ToString())} {Esc(string.Join(",", s.Ports.Select(p => $"{p.Port}/{p.Protocol.ToString().ToUpperInvariant()}")))}</text>\n"));
            var selector = LabelSelector.ForService(s.Selector);
            foreach (var e in endpoints.Where(e => e.Namespace == s.Namespace && e.Ready && selector.Matches(e.Labels)))
            {
                foreach (var ip in e.IPs)
                {
                    if (podCenters.TryGetValue(ip.ToString(), out var c))
                    {
                        sb.Append(Inv($"<line x1=\"{sx + 120}\" y1=\"{sy + 44}\" x2=\"{c.X}\" y2=\"{c.Y}\" stroke=\"#b45309\" stroke-width=\"1.5\" marker-end=\"url(#arrow)\"/>\n"));
                    }
                }
            }
        }

        sb.Append("</svg>\n");
        return sb.ToString();
    }

    private static string Gateway(Node? node)
    {
        if (node is not { PodCidrs.Count: > 0 })
        {
            return "-";
        }

        var cidr = node.PodCidrs[0];
        return IpRange.DefaultGateway(cidr) + "/" + cidr.PrefixLength.ToString(CultureInfo.InvariantCulture);
    }

    private static string Trim(string s, int max) => s.Length <= max ? s : s[..(max - 1)] + "…";

    private static string Esc(string s) => SecurityElement.Escape(s);

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
