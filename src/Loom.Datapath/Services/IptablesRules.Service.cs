using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Loom.Core.Model;

namespace Loom.Datapath.Services;

/// <summary>
/// One service port's rules as kube-proxy's syncProxyRules writes them: the entry rules (ClusterIP, external IPs,
/// node port), the filter rules for destinations without an endpoint, and its KUBE-EXT/SVC/SVL/SEP chains.
/// </summary>
internal static partial class IptablesRules
{
    private const string NodePortsComment = "kubernetes service nodeports; NOTE: this must be the last rule in this chain";

    /// <summary>
    /// The nat entry rules of a service, as <c>-A</c> lines: its ClusterIP jump in KUBE-SERVICES (to KUBE-SVL under
    /// internalTrafficPolicy Local), one KUBE-SERVICES jump per external IP and its KUBE-NODEPORTS rule, both to KUBE-EXT.
    /// </summary>
    public static IEnumerable<string> NatEntryRules(ServicePortState s)
    {
        var c = new EndpointCategories(s);
        if (c.HasInternalEndpoints)
        {
            yield return "-A " + ServicesChain + " -m comment --comment " + Quote($"{s.Name} cluster IP") + Match(s.Frontend)
                + " -j " + (c.InternalLocal ? LocalChain(s) : ServiceChain(s));
        }

        if (!c.HasEndpoints)
        {
            yield break;
        }

        foreach (var ip in s.ExternalIps)
        {
            yield return "-A " + ServicesChain + " -m comment --comment " + Quote($"{s.Name} external IP")
                + Match(s.Frontend with { Address = ip }) + " -j " + ExternalChain(s);
        }

        if (s.NodePort != 0)
        {
            yield return "-A " + NodePortsChain + " -m comment --comment " + Quote(s.Name.ToString()) + ProtoMatch(s.Frontend)
                + " --dport " + Num(s.NodePort) + " -j " + ExternalChain(s);
        }
    }

    /// <summary>
    /// The filter rules of a service, as <c>-A</c> lines: REJECT (no endpoints at all) or DROP (no local endpoint under a
    /// Local policy) in KUBE-SERVICES for the ClusterIP and in KUBE-EXTERNAL-SERVICES for external IPs and the node port;
    /// the health-check node port's ACCEPT in KUBE-NODEPORTS.
    /// </summary>
    public static IEnumerable<string> FilterRules(ServicePortState s)
    {
        var c = new EndpointCategories(s);
        var (target, comment) = c.NoEndpoints(s);
        if (!c.HasInternalEndpoints)
        {
            yield return "-A " + ServicesChain + " -m comment --comment " + Quote(comment) + Match(s.Frontend) + " -j " + target;
        }

        if (!c.HasExternalEndpoints)
        {
            foreach (var ip in s.ExternalIps)
            {
                yield return "-A " + ExternalServicesChain + " -m comment --comment " + Quote(comment) + Match(s.Frontend with { Address = ip }) + " -j " + target;
            }

            if (s.NodePort != 0)
            {
                yield return "-A " + ExternalServicesChain + " -m comment --comment " + Quote(comment) + " -m addrtype --dst-type LOCAL"
                    + ProtoMatch(s.Frontend) + " --dport " + Num(s.NodePort) + " -j " + target;
            }
        }

        if (s.HealthCheckNodePort != 0)
        {
            yield return "-A " + NodePortsChain + " -m comment --comment " + Quote($"{s.Name} health check node port")
                + " -m tcp -p tcp --dport " + Num(s.HealthCheckNodePort) + " -j ACCEPT";
        }
    }

    /// <summary>
    /// kube-proxy's tail call from nat KUBE-SERVICES to KUBE-NODEPORTS: for every local address without
    /// <see cref="ServiceProxyOptions.NodePortAddresses"/> (or with a /0 among them), else one rule per node IP inside them.
    /// </summary>
    public static IEnumerable<string> NodePortJumps(ServiceProxyOptions options)
    {
        var head = "-A " + ServicesChain + " -m comment --comment " + Quote(NodePortsComment);
        var prefixes = options.NodePortAddresses.Where(p => p.BaseAddress.AddressFamily == AddressFamily.InterNetwork).ToList();
        if (options.NodePortAddresses.Count == 0 || prefixes.Any(p => p.PrefixLength == 0))
        {
            // kube-proxy with localhostNodePorts off: 127.0.0.1:nodePort would be DNAT-ed out of the node with a loopback
            // source, which the kernel drops without route_localnet (Loom does not set it; nftables excludes it too).
            return [head + " -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j " + NodePortsChain];
        }

        return options.NodeIps.Where(ip => prefixes.Any(p => p.Contains(ip))).Distinct()
            .Select(ip => head + " -d " + ip + " -j " + NodePortsChain).ToList();
    }

    /// <summary>The KUBE-EXT, KUBE-SVC, KUBE-SVL and KUBE-SEP chains of one service with endpoints, in kube-proxy's order and wording.</summary>
    public static void AppendServiceChains(List<string> chains, StringBuilder rules, ServicePortState s, ServiceProxyOptions options)
    {
        var c = new EndpointCategories(s);
        chains.AddRange(ChainsOf(s));
        var clusterChain = ServiceChain(s);
        if (c.HasInternalEndpoints && options.ClusterCidr is { } cidr)
        {
            // Off-cluster clients reaching a ClusterIP are masqueraded so the reply returns via this node.
            rules.Append("-A ").Append(c.InternalLocal ? LocalChain(s) : clusterChain).Append(" -m comment --comment ")
                 .Append(Quote($"{s.Name} cluster IP")).Append(Match(s.Frontend)).Append(" ! -s ").Append(cidr).Append(" -j ").Append(MarkMasqChain).Append('\n');
        }

        if (c.UsesExternalChain)
        {
            AppendExternalChain(rules, s, c, options);
        }

        if (c.UsesCluster)
        {
            AppendEndpointChoice(rules, s, clusterChain, s.Backends);
        }

        if (c.UsesLocal)
        {
            AppendEndpointChoice(rules, s, LocalChain(s), c.Local);
        }

        var proto = s.Frontend.ProtocolName;
        var affinity = s.SessionAffinity == SessionAffinity.ClientIP;
        foreach (var b in c.Reachable)
        {
            var sep = EndpointChain(s, b);
            var comment = Quote(s.Name.ToString());
            // Hairpin: a backend reaching itself through the ClusterIP must be SNAT-ed or it would answer itself directly.
            rules.Append("-A ").Append(sep).Append(" -m comment --comment ").Append(comment).Append(" -s ").Append(b.Address).Append(" -j KUBE-MARK-MASQ\n");
            rules.Append("-A ").Append(sep).Append(" -m comment --comment ").Append(comment);
            if (affinity)
            {
                rules.Append(" -m recent --name ").Append(sep).Append(" --set");
            }

            rules.Append(" -m ").Append(proto).Append(" -p ").Append(proto).Append(" -j DNAT --to-destination ").Append(b).Append('\n');
        }
    }

    // KUBE-EXT: Cluster masquerades everything (the endpoint may be on another node). Local keeps the client's address,
    // except that pods and the node itself are sent to KUBE-SVC as if they had come back from an outside load balancer.
    private static void AppendExternalChain(StringBuilder rules, ServicePortState s, EndpointCategories c, ServiceProxyOptions options)
    {
        var ext = ExternalChain(s);
        var cluster = ServiceChain(s);
        if (!c.ExternalLocal)
        {
            rules.Append("-A ").Append(ext).Append(" -m comment --comment ").Append(Quote($"masquerade traffic for {s.Name} external destinations"))
                 .Append(" -j ").Append(MarkMasqChain).Append('\n');
        }
        else
        {
            if (options.ClusterCidr is { } cidr)
            {
                rules.Append("-A ").Append(ext).Append(" -m comment --comment ").Append(Quote($"pod traffic for {s.Name} external destinations"))
                     .Append(" -s ").Append(cidr).Append(" -j ").Append(cluster).Append('\n');
            }

            // The node's own traffic has a local address as source (the node port's), so it must be masqueraded.
            rules.Append("-A ").Append(ext).Append(" -m comment --comment ").Append(Quote($"masquerade LOCAL traffic for {s.Name} external destinations"))
                 .Append(" -m addrtype --src-type LOCAL -j ").Append(MarkMasqChain).Append('\n');
            rules.Append("-A ").Append(ext).Append(" -m comment --comment ").Append(Quote($"route LOCAL traffic for {s.Name} external destinations"))
                 .Append(" -m addrtype --src-type LOCAL -j ").Append(cluster).Append('\n');
        }

        if (c.HasExternalEndpoints)
        {
            rules.Append("-A ").Append(ext).Append(" -j ").Append(c.ExternalLocal ? LocalChain(s) : cluster).Append('\n');
        }
    }

    // kube-proxy's writeServiceToEndpointRules: ClientIP affinity checks first, then the random cascade.
    private static void AppendEndpointChoice(StringBuilder rules, ServicePortState s, string chain, IReadOnlyList<BackendAddress> endpoints)
    {
        if (s.SessionAffinity == SessionAffinity.ClientIP)
        {
            foreach (var b in endpoints)
            {
                var sep = EndpointChain(s, b);
                rules.Append("-A ").Append(chain).Append(" -m comment --comment ").Append(Quote($"{s.Name} -> {b}"))
                     .Append(" -m recent --name ").Append(sep).Append(" --rcheck --seconds ")
                     .Append(Num(s.AffinityTimeoutSeconds)).Append(" --reap -j ").Append(sep).Append('\n');
            }
        }

        for (var i = 0; i < endpoints.Count; i++)
        {
            var b = endpoints[i];
            rules.Append("-A ").Append(chain).Append(" -m comment --comment ").Append(Quote($"{s.Name} -> {b}"));
            if (i < endpoints.Count - 1)
            {
                // Endpoint i of n is taken with 1/(n-i) of what is left: uniform overall; the last one catches the rest.
                rules.Append(" -m statistic --mode random --probability ").Append(Probability(endpoints.Count - i));
            }

            rules.Append(" -j ").Append(EndpointChain(s, b)).Append('\n');
        }
    }

    private static string ProtoMatch(Frontend f) => $" -m {f.ProtocolName} -p {f.ProtocolName}";

    private static string Num(int n) => n.ToString(CultureInfo.InvariantCulture);
}
