using System.Globalization;
using System.Text;
using Loom.Core.Model;

namespace Loom.Datapath.Services;

/// <summary>
/// Renders kube-proxy's nftables layout as an <c>nft -f</c> script. Facts from kubernetes pkg/proxy/nftables/proxier.go
/// (setupNFTables, syncProxyRules, writeServiceToEndpointRules): one <c>ip kube-proxy</c> table; a <c>services</c>
/// chain dispatching through the <c>service-ips</c> verdict map keyed by <c>ipv4_addr . inet_proto . inet_service</c>;
/// per-service chains picking an endpoint chain with <c>numgen random mod N</c> (a cascade of rules up to
/// <see cref="MaxCascadeEndpoints"/> endpoints, kube-proxy's inline vmap above); masquerade by mark; services
/// without endpoints rejected through the <c>no-endpoint-services</c> map. Unlike kube-proxy's full sync, map
/// elements are always diffed (against the kernel on a full sync, against the last applied state otherwise), so a sync
/// carries only the elements and chains that changed.
/// </summary>
internal static class NftablesRules
{
    public const string Table = "kube-proxy";
    public const string ServiceIpsMap = "service-ips";
    public const string NoEndpointServicesMap = "no-endpoint-services";
    public const string ServiceNodePortsMap = "service-nodeports";
    public const string NoEndpointNodePortsMap = "no-endpoint-nodeports";
    public const string NodePortIpsSet = "nodeport-ips";
    public const string RejectChain = "reject-chain";
    private const string T = "ip " + Table;

    /// <summary>Services with more endpoints pick one through an inline vmap (see <see cref="AppendEndpointChoice"/>).</summary>
    public const int MaxCascadeEndpoints = 32;

    private static readonly (string Name, string Type, string Hook, int Priority)[] BaseChains =
    [
        // Filter chains run before DNAT so they see the ClusterIP, as kube-proxy's do.
        ("filter-input", "filter", "input", -110),
        ("filter-forward", "filter", "forward", -110),
        ("filter-output", "filter", "output", -110),
        ("nat-prerouting", "nat", "prerouting", -100),
        ("nat-output", "nat", "output", -100),
        ("nat-postrouting", "nat", "postrouting", 100),
    ];

    private static readonly (string Dst, string Src, string Extra)[] JumpChains =
    [
        ("nodeport-endpoints-check", "filter-input", "ct state new "),
        ("service-endpoints-check", "filter-input", "ct state new "),
        ("service-endpoints-check", "filter-forward", "ct state new "),
        ("service-endpoints-check", "filter-output", "ct state new "),
        ("services", "nat-output", ""),
        ("services", "nat-prerouting", ""),
        ("masquerading", "nat-postrouting", ""),
    ];

    public static string ServiceChain(ServicePortState s) => KubeProxyNames.NftServiceChain(s.Name, s.Frontend.ProtocolName);

    public static string EndpointChain(ServicePortState s, BackendAddress b) => KubeProxyNames.NftEndpointChain(s.Name, s.Frontend.ProtocolName, b);

    public static string AffinitySet(ServicePortState s, BackendAddress b) => KubeProxyNames.NftAffinitySet(s.Name, s.Frontend.ProtocolName, b);

    /// <summary>The chains a programmed service owns (none without backends).</summary>
    public static IEnumerable<string> ChainsOf(ServicePortState s) => new NftNames(s).Chains;

    public static string ElementKey(Frontend f) => string.Create(CultureInfo.InvariantCulture, $"{f.Address} . {f.ProtocolName} . {f.Port}");

    /// <summary>
    /// The script taking the kernel from <paramref name="existing"/> to <paramref name="desired"/>. With
    /// <paramref name="setup"/> the table skeleton (base chains, dispatch rules, maps) is (re)declared too, as on a
    /// first sync; map elements stay diffed either way, so no service is ever briefly missing.
    /// </summary>
    public static string Render(
        IReadOnlyCollection<ServicePortState> desired,
        Func<ServicePortState, bool> rewrite,
        NftSnapshot existing,
        bool setup,
        ServiceProxyOptions options,
        Func<ServicePortState, NftNames>? namesOf = null)
    {
        namesOf ??= s => new NftNames(s);
        // Whatever the caller passed: a port no rule can express is left out with its reason as a script comment.
        var skipped = new List<ServiceSkip>();
        var ordered = ServiceModel.Renderable(desired, skipped);
        var sb = new StringBuilder();
        foreach (var reason in skipped)
        {
            sb.Append("# loom: ").Append(reason).Append('\n');
        }

        if (setup || !existing.Exists)
        {
            AppendSetup(sb, options);
        }

        var activeChains = new HashSet<string>(StringComparer.Ordinal);
        var activeSets = new HashSet<string>(StringComparer.Ordinal);
        var rules = new StringBuilder();
        foreach (var s in ordered.Where(s => s.HasBackends))
        {
            var names = namesOf(s);
            activeChains.UnionWith(names.Chains);
            activeSets.UnionWith(names.AffinitySets);
            var affinity = s.SessionAffinity == SessionAffinity.ClientIP;

            if (!rewrite(s))
            {
                continue;
            }

            foreach (var chain in names.Chains)
            {
                sb.Append("add chain ").Append(T).Append(' ').Append(chain).Append('\n');
                if (existing.Chains.Contains(chain))
                {
                    // A new chain is empty already; flushing it would only cost the transaction a command.
                    sb.Append("flush chain ").Append(T).Append(' ').Append(chain).Append('\n');
                }
            }

            if (affinity)
            {
                foreach (var set in names.AffinitySets)
                {
                    if (existing.Sets.TryGetValue(set, out var timeout) && timeout != s.AffinityTimeoutSeconds)
                    {
                        // A set's timeout cannot be changed in place; its rules were flushed above, so it can be replaced.
                        sb.Append("delete set ").Append(T).Append(' ').Append(set).Append('\n');
                    }

                    sb.Append("add set ").Append(T).Append(' ').Append(set)
                      .Append(" { type ipv4_addr ; flags dynamic,timeout ; timeout ")
                      .Append(s.AffinityTimeoutSeconds.ToString(CultureInfo.InvariantCulture)).Append("s ; }\n");
                }
            }

            AppendServiceRules(rules, s, names, options);
        }

        sb.Append(rules);

        foreach (var (map, elements) in Elements(ordered, namesOf))
        {
            AppendElementDiff(sb, map, elements, existing.Elements(map));
        }

        // Chains of removed services: flush (dropping references) then delete, in the same transaction after their
        // map elements are gone; kernels from 6.2 settle the element's chain reference within the transaction.
        // Only names this renderer could have written: a chain someone else added under a quoted name is left alone
        // rather than written unquoted into the script, which nft would refuse as a whole.
        var staleChains = existing.Chains.Where(c => c.Contains('/', StringComparison.Ordinal) && !activeChains.Contains(c) && IsOwnName(c))
            .Order(StringComparer.Ordinal).ToList();
        foreach (var c in staleChains)
        {
            sb.Append("flush chain ").Append(T).Append(' ').Append(c).Append('\n');
        }

        foreach (var c in staleChains)
        {
            sb.Append("delete chain ").Append(T).Append(' ').Append(c).Append('\n');
        }

        foreach (var set in existing.Sets.Keys.Where(n => n.StartsWith("affinity-", StringComparison.Ordinal) && !activeSets.Contains(n) && IsOwnName(n)).Order(StringComparer.Ordinal))
        {
            sb.Append("delete set ").Append(T).Append(' ').Append(set).Append('\n');
        }

        return sb.ToString();
    }

    /// <summary>
    /// The verdict-map elements of <paramref name="ordered"/> (kube-proxy's syncProxyRules): per map, key to verdict and
    /// comment. ClusterIP and external IPs in <c>service-ips</c>, node ports in <c>service-nodeports</c>; those without
    /// a usable endpoint in <c>no-endpoint-services</c> / <c>no-endpoint-nodeports</c> (reject, or drop under a Local
    /// policy). Of two ports claiming one key the first in render order keeps it, so the script never adds a key twice.
    /// </summary>
    public static Dictionary<string, Dictionary<string, (string Verdict, string? Comment)>> Elements(IEnumerable<ServicePortState> ordered, Func<ServicePortState, NftNames> namesOf)
    {
        var maps = new[] { ServiceIpsMap, NoEndpointServicesMap, ServiceNodePortsMap, NoEndpointNodePortsMap }
            .ToDictionary(m => m, _ => new Dictionary<string, (string, string?)>(StringComparer.Ordinal), StringComparer.Ordinal);
        foreach (var s in ordered)
        {
            var names = namesOf(s);
            var c = names.Categories;
            var comment = s.Name.ToString();
            var noEndpoints = c.HasEndpoints ? "drop" : "goto " + RejectChain;
            _ = c.HasInternalEndpoints
                ? maps[ServiceIpsMap].TryAdd(ElementKey(s.Frontend), ("goto " + names.Internal, null))
                : maps[NoEndpointServicesMap].TryAdd(ElementKey(s.Frontend), (noEndpoints, comment));
            foreach (var key in s.ExternalIps.Select(ip => ElementKey(s.Frontend with { Address = ip })))
            {
                if (c.HasEndpoints)
                {
                    maps[ServiceIpsMap].TryAdd(key, ("goto " + names.External, null));
                }

                if (!c.HasExternalEndpoints)
                {
                    maps[NoEndpointServicesMap].TryAdd(key, (noEndpoints, comment));
                }
            }

            if (s.NodePort != 0)
            {
                var key = NodePortKey(s);
                if (c.HasEndpoints)
                {
                    maps[ServiceNodePortsMap].TryAdd(key, ("goto " + names.External, null));
                }

                if (!c.HasExternalEndpoints)
                {
                    maps[NoEndpointNodePortsMap].TryAdd(key, (noEndpoints, comment));
                }
            }
        }

        return maps;
    }

    public static string NodePortKey(ServicePortState s) => string.Create(CultureInfo.InvariantCulture, $"{s.Frontend.ProtocolName} . {s.NodePort}");

    private static bool IsOwnName(string name) => name.Length is > 0 and <= 256 && RuleText.NftName(name) == name;

    /// <summary>The rules of one service's external, service, local and endpoint chains, in kube-proxy's order.</summary>
    public static void AppendServiceRules(StringBuilder sb, ServicePortState s, NftNames names, ServiceProxyOptions options)
    {
        var c = names.Categories;
        var proto = s.Frontend.ProtocolName;
        if (c.HasInternalEndpoints && options.ClusterCidr is { } cidr)
        {
            sb.Append("add rule ").Append(T).Append(' ').Append(names.Internal).Append(" ip daddr ").Append(s.Frontend.Address)
              .Append(' ').Append(proto).Append(" dport ").Append(s.Frontend.Port.ToString(CultureInfo.InvariantCulture))
              .Append(" ip saddr != ").Append(cidr).Append(" jump mark-for-masquerade\n");
        }

        if (c.UsesExternalChain)
        {
            AppendExternalRules(sb, names, options);
        }

        var all = Enumerable.Range(0, s.Backends.Count).ToList();
        if (c.UsesCluster)
        {
            AppendEndpointChoice(sb, names.Service, names, all);
        }

        if (c.UsesLocal)
        {
            AppendEndpointChoice(sb, names.Local, names, all.Where(i => s.Backends[i].IsLocal).ToList());
        }

        var affinity = names.Affinity.Count > 0;
        var reachable = c.Reachable.ToHashSet();
        foreach (var i in all.Where(i => reachable.Contains(s.Backends[i])))
        {
            var b = s.Backends[i];
            var ep = names.Endpoints[i];
            sb.Append("add rule ").Append(T).Append(' ').Append(ep).Append(" ip saddr ").Append(b.Address).Append(" jump mark-for-masquerade\n");
            if (affinity)
            {
                sb.Append("add rule ").Append(T).Append(' ').Append(ep).Append(" update @").Append(names.Affinity[i]).Append(" { ip saddr }\n");
            }

            sb.Append("add rule ").Append(T).Append(' ').Append(ep).Append(" meta l4proto ").Append(proto).Append(" dnat to ").Append(b).Append('\n');
        }
    }

    // The external chain: Cluster masquerades everything; Local keeps the client's address, but sends pods and the
    // node itself (masqueraded) to the service chain as if they had come back from an outside load balancer.
    private static void AppendExternalRules(StringBuilder sb, NftNames names, ServiceProxyOptions options)
    {
        var ext = "add rule " + T + " " + names.External;
        if (!names.Categories.ExternalLocal)
        {
            sb.Append(ext).Append(" jump mark-for-masquerade\n");
        }
        else
        {
            if (options.ClusterCidr is { } cidr)
            {
                sb.Append(ext).Append(" ip saddr ").Append(cidr).Append(" goto ").Append(names.Service).Append(" comment \"short-circuit pod traffic\"\n");
            }

            sb.Append(ext).Append(" fib saddr type local jump mark-for-masquerade comment \"masquerade local traffic\"\n");
            sb.Append(ext).Append(" fib saddr type local goto ").Append(names.Service).Append(" comment \"short-circuit local traffic\"\n");
        }

        if (names.Categories.HasExternalEndpoints)
        {
            sb.Append(ext).Append(" goto ").Append(names.Categories.ExternalLocal ? names.Local : names.Service).Append('\n');
        }
    }

    /// <summary>
    /// The rules in <paramref name="chain"/> picking one of the endpoints <paramref name="picks"/> (indexes into the
    /// service's backends): ClientIP affinity checks first, then at random. Up to <see cref="MaxCascadeEndpoints"/>
    /// endpoints: a cascade <c>numgen random mod K 0 goto</c> for K = N .. 2, then a plain <c>goto</c> to the last (each
    /// endpoint 1/N, as iptables' statistic cascade); above that, kube-proxy's <c>numgen random mod N vmap { 0 : goto ... }</c>.
    /// </summary>
    /// <remarks>
    /// Why not always the vmap: each inline vmap is an anonymous set, and for every new set the kernel walks the
    /// table's whole set list several times (name allocation, duplicate check, lookups by name): the first sync of
    /// 10000 services took 70 s (with the cascade: 5-8 s). Splitting it into transactions of 500 services still took
    /// 15 s, each slower than the last: the walks are over the table, not the transaction. Only the first packet
    /// of a connection passes the nat chains, so the cascade's cost grows with N per connection, not per packet;
    /// large services keep the one lookup.
    /// </remarks>
    private static void AppendEndpointChoice(StringBuilder sb, string chain, NftNames names, List<int> picks)
    {
        var rule = "add rule " + T + " " + chain;
        foreach (var i in names.Affinity.Count > 0 ? picks : [])
        {
            sb.Append(rule).Append(" ip saddr @").Append(names.Affinity[i]).Append(" goto ").Append(names.Endpoints[i]).Append('\n');
        }

        var n = picks.Count;
        if (n > MaxCascadeEndpoints)
        {
            sb.Append(rule).Append(" numgen random mod ").Append(n.ToString(CultureInfo.InvariantCulture)).Append(" vmap { ");
            for (var k = 0; k < n; k++)
            {
                sb.Append(k > 0 ? " , " : string.Empty).Append(k.ToString(CultureInfo.InvariantCulture)).Append(" : goto ").Append(names.Endpoints[picks[k]]);
            }

            sb.Append(" }\n");
            return;
        }

        for (var k = 0; k < n - 1; k++)
        {
            sb.Append(rule).Append(" numgen random mod ").Append((n - k).ToString(CultureInfo.InvariantCulture))
              .Append(" 0 goto ").Append(names.Endpoints[picks[k]]).Append('\n');
        }

        sb.Append(rule).Append(" goto ").Append(names.Endpoints[picks[n - 1]]).Append('\n');
    }

    // One "delete element" and one "add element" command per map, each listing every element it touches: thousands of
    // single-element commands cost nft a parse and a netlink message each.
    private static void AppendElementDiff(StringBuilder sb, string map, Dictionary<string, (string Verdict, string? Comment)> desired, IReadOnlyDictionary<string, string> existing)
    {
        var gone = existing.Keys.Where(key => !desired.TryGetValue(key, out var want) || want.Verdict != existing[key]).Order(StringComparer.Ordinal).ToList();
        if (gone.Count > 0)
        {
            sb.Append("delete element ").Append(T).Append(' ').Append(map).Append(" { ").AppendJoin(", ", gone).Append(" }\n");
        }

        var first = true;
        foreach (var (key, want) in desired.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (existing.TryGetValue(key, out var have) && have == want.Verdict)
            {
                continue;
            }

            sb.Append(first ? "add element " + T + " " + map + " { " : ", ").Append(key);
            first = false;
            if (want.Comment is not null)
            {
                sb.Append(" comment ").Append(RuleText.NftComment(want.Comment));
            }

            sb.Append(" : ").Append(want.Verdict);
        }

        if (!first)
        {
            sb.Append(" }\n");
        }
    }

    private static void AppendSetup(StringBuilder sb, ServiceProxyOptions options)
    {
        var mark = options.MasqueradeMark;
        sb.Append("add table ").Append(T).Append(" { comment \"rules for kube-proxy\" ; }\n");
        foreach (var (name, type, hook, prio) in BaseChains)
        {
            sb.Append("add chain ").Append(T).Append(' ').Append(name).Append(" { type ").Append(type).Append(" hook ").Append(hook)
              .Append(" priority ").Append(prio.ToString(CultureInfo.InvariantCulture)).Append(" ; }\n");
            sb.Append("flush chain ").Append(T).Append(' ').Append(name).Append('\n');
        }

        foreach (var chain in new[] { "services", "service-endpoints-check", "nodeport-endpoints-check", "masquerading", "mark-for-masquerade" })
        {
            sb.Append("add chain ").Append(T).Append(' ').Append(chain).Append('\n');
            sb.Append("flush chain ").Append(T).Append(' ').Append(chain).Append('\n');
        }

        foreach (var (dst, src, extra) in JumpChains)
        {
            sb.Append("add rule ").Append(T).Append(' ').Append(src).Append(' ').Append(extra).Append("jump ").Append(dst).Append('\n');
        }

        sb.Append("add rule ").Append(T).Append(" mark-for-masquerade mark set mark or ").Append(mark).Append('\n');
        sb.Append("add rule ").Append(T).Append(" masquerading mark and ").Append(mark).Append(" == 0 return\n");
        // Clear the mark so a packet that goes round the stack again is not masqueraded twice.
        sb.Append("add rule ").Append(T).Append(" masquerading mark set mark xor ").Append(mark).Append('\n');
        sb.Append("add rule ").Append(T).Append(" masquerading masquerade").Append(options.RandomFully ? " fully-random\n" : "\n");

        sb.Append("add map ").Append(T).Append(' ').Append(NoEndpointServicesMap)
          .Append(" { type ipv4_addr . inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to services with no endpoints\" ; }\n");
        sb.Append("add chain ").Append(T).Append(' ').Append(RejectChain).Append(" { comment \"helper for @no-endpoint-services / @no-endpoint-nodeports\" ; }\n");
        sb.Append("flush chain ").Append(T).Append(' ').Append(RejectChain).Append('\n');
        sb.Append("add rule ").Append(T).Append(' ').Append(RejectChain).Append(" reject\n");
        sb.Append("add rule ").Append(T).Append(" service-endpoints-check ip daddr . meta l4proto . th dport vmap @").Append(NoEndpointServicesMap).Append('\n');
        sb.Append("add map ").Append(T).Append(' ').Append(ServiceIpsMap)
          .Append(" { type ipv4_addr . inet_proto . inet_service : verdict ; comment \"ClusterIP, ExternalIP and LoadBalancer IP traffic\" ; }\n");
        sb.Append("add rule ").Append(T).Append(" services ip daddr . meta l4proto . th dport vmap @").Append(ServiceIpsMap).Append('\n');
        AppendNodePortSetup(sb, options);
    }

    // kube-proxy's node-port dispatch: every local address but loopback (fib daddr type local) without
    // --nodeport-addresses, else the node IPs inside them (the nodeport-ips set).
    private static void AppendNodePortSetup(StringBuilder sb, ServiceProxyOptions options)
    {
        sb.Append("add map ").Append(T).Append(' ').Append(NoEndpointNodePortsMap)
          .Append(" { type inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to service nodeports with no endpoints\" ; }\n");
        sb.Append("add map ").Append(T).Append(' ').Append(ServiceNodePortsMap).Append(" { type inet_proto . inet_service : verdict ; comment \"NodePort traffic\" ; }\n");
        sb.Append("add set ").Append(T).Append(' ').Append(NodePortIpsSet).Append(" { type ipv4_addr ; comment \"IPs that accept NodePort traffic\" ; }\n");
        var prefixes = options.NodePortAddresses.Where(p => p.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork).ToList();
        string match;
        if (options.NodePortAddresses.Count == 0 || prefixes.Any(p => p.PrefixLength == 0))
        {
            // The set's rules were flushed with their chains above, so it can go.
            sb.Append("delete set ").Append(T).Append(' ').Append(NodePortIpsSet).Append('\n');
            match = "ip daddr != 127.0.0.0/8";
            sb.Append("add rule ").Append(T).Append(" services fib daddr type local ").Append(match)
              .Append(" meta l4proto . th dport vmap @").Append(ServiceNodePortsMap).Append('\n');
        }
        else
        {
            sb.Append("flush set ").Append(T).Append(' ').Append(NodePortIpsSet).Append('\n');
            var ips = options.NodeIps.Where(ip => !System.Net.IPAddress.IsLoopback(ip) && prefixes.Any(p => p.Contains(ip))).Distinct().ToList();
            if (ips.Count > 0)
            {
                sb.Append("add element ").Append(T).Append(' ').Append(NodePortIpsSet).Append(" { ").AppendJoin(", ", ips).Append(" }\n");
            }

            match = "ip daddr @" + NodePortIpsSet;
            sb.Append("add rule ").Append(T).Append(" services ").Append(match).Append(" meta l4proto . th dport vmap @").Append(ServiceNodePortsMap).Append('\n');
        }

        sb.Append("add rule ").Append(T).Append(" nodeport-endpoints-check ").Append(match).Append(" meta l4proto . th dport vmap @").Append(NoEndpointNodePortsMap).Append('\n');
    }
}
