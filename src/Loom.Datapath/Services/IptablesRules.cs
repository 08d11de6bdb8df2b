using System.Globalization;
using System.Text;
using Loom.Core.Model;

namespace Loom.Datapath.Services;

/// <summary>
/// Renders kube-proxy's iptables layout as <c>iptables-restore --noflush</c> input. Facts from kubernetes
/// pkg/proxy/iptables/proxier.go (syncProxyRules, writeServiceToEndpointRules, iptablesJumpChains). A full sync
/// (<see cref="Render"/>) rewrites KUBE-SERVICES (nat and filter), KUBE-POSTROUTING and KUBE-MARK-MASQ as kube-proxy
/// does on every sync. A partial one (<see cref="RenderPartial"/>) departs from kube-proxy: it deletes and appends
/// single KUBE-SERVICES rules instead of rewriting 10,000 of them. Either way a service's KUBE-SVC/KUBE-SEP chains are
/// written only when it changed, and chains of removed services are flushed and deleted.
/// </summary>
internal static partial class IptablesRules
{
    public const string ServicesChain = "KUBE-SERVICES";
    public const string PostroutingChain = "KUBE-POSTROUTING";
    public const string MarkMasqChain = "KUBE-MARK-MASQ";
    public const string NodePortsChain = "KUBE-NODEPORTS";
    public const string ExternalServicesChain = "KUBE-EXTERNAL-SERVICES";

    // kube-proxy's isServiceChainName: every per-service chain starts with one of these.
    private static readonly string[] ServiceChainPrefixes = ["KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-"];

    /// <summary>The hook jumps kube-proxy ensures, written as iptables-save prints them (so presence is a string match).</summary>
    public static readonly (string Table, string Rule)[] JumpRules =
    [
        ("filter", "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES"),
        ("filter", "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES"),
        ("filter", "-A INPUT -m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS"),
        ("filter", "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"),
        ("filter", "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"),
        ("nat", "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"),
        ("nat", "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"),
        ("nat", "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING"),
    ];

    public static bool IsServiceChain(string chain) => ServiceChainPrefixes.Any(p => chain.StartsWith(p, StringComparison.Ordinal));

    /// <summary>kube-proxy's computeProbability: 1/n with ten decimals (iptables-save prints eleven).</summary>
    public static string Probability(int n) => (1.0 / n).ToString("F10", CultureInfo.InvariantCulture);

    public static string ServiceChain(ServicePortState s) => KubeProxyNames.IptablesServiceChain(s.Name, s.Frontend.ProtocolName);

    public static string LocalChain(ServicePortState s) => KubeProxyNames.IptablesLocalChain(s.Name, s.Frontend.ProtocolName);

    public static string ExternalChain(ServicePortState s) => KubeProxyNames.IptablesExternalChain(s.Name, s.Frontend.ProtocolName);

    public static string EndpointChain(ServicePortState s, BackendAddress b) => KubeProxyNames.IptablesEndpointChain(s.Name, s.Frontend.ProtocolName, b);

    /// <summary>
    /// The nat chains a service owns when programmed: KUBE-EXT when external, KUBE-SVC and KUBE-SVL when their policy is
    /// in use, one KUBE-SEP per endpoint they reach (none without endpoints).
    /// </summary>
    public static IEnumerable<string> ChainsOf(ServicePortState s)
    {
        var c = new EndpointCategories(s);
        var chains = new List<string>();
        if (c.UsesExternalChain)
        {
            chains.Add(ExternalChain(s));
        }

        if (c.UsesCluster)
        {
            chains.Add(ServiceChain(s));
        }

        if (c.UsesLocal)
        {
            chains.Add(LocalChain(s));
        }

        chains.AddRange(c.Reachable.Select(b => EndpointChain(s, b)));
        return chains;
    }

    /// <summary>
    /// A full sync's input for both tables: every chain of every service is (re)written and every service chain in
    /// <paramref name="nat"/> (what the kernel holds) that no service owns is deleted.
    /// </summary>
    public static string Render(
        IReadOnlyCollection<ServicePortState> desired,
        IptablesSnapshot filter,
        IptablesSnapshot nat,
        ServiceProxyOptions options)
    {
        // Whatever the caller passed: a port no rule can express is left out with its reason as a script comment.
        var skipped = new List<ServiceSkip>();
        var ordered = ServiceModel.Renderable(desired, skipped);
        var sb = new StringBuilder();
        foreach (var reason in skipped)
        {
            sb.Append("# loom: ").Append(reason).Append('\n');
        }


        sb.Append("*filter\n");
        sb.Append(ChainLine(ServicesChain)).Append(ChainLine(ExternalServicesChain)).Append(ChainLine(NodePortsChain));
        AppendMissingJumps(sb, "filter", filter);
        foreach (var r in ordered.SelectMany(FilterRules))
        {
            sb.Append(r).Append('\n');
        }

        sb.Append("COMMIT\n");

        var active = new HashSet<string>(StringComparer.Ordinal);
        var chains = new StringBuilder();
        var declared = new List<string>();
        var rules = new StringBuilder();
        foreach (var name in new[] { ServicesChain, NodePortsChain, PostroutingChain, MarkMasqChain })
        {
            chains.Append(ChainLine(name));
        }

        var mark = options.MasqueradeMark;
        rules.Append("-A KUBE-POSTROUTING -m mark ! --mark ").Append(mark).Append('/').Append(mark).Append(" -j RETURN\n");
        // Clear the mark so a packet that goes round the stack again is not masqueraded twice.
        rules.Append("-A KUBE-POSTROUTING -j MARK --xor-mark ").Append(mark).Append('\n');
        rules.Append("-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE")
             .Append(options.RandomFully ? " --random-fully\n" : "\n");
        rules.Append("-A KUBE-MARK-MASQ -j MARK --or-mark ").Append(mark).Append('\n');

        foreach (var s in ordered.Where(s => s.HasBackends))
        {
            foreach (var r in NatEntryRules(s))
            {
                rules.Append(r).Append('\n');
            }

            active.UnionWith(ChainsOf(s));
            AppendServiceChains(declared, rules, s, options);
        }

        // After every service's rules: the node-port jump must stay the last rule of KUBE-SERVICES.
        foreach (var r in NodePortJumps(options))
        {
            rules.Append(r).Append('\n');
        }

        AppendStaleChains(declared, rules, nat.Chains.Where(IsServiceChain), active);
        AppendDeclared(chains, declared);
        sb.Append("*nat\n").Append(chains);
        AppendMissingJumps(sb, "nat", nat);
        sb.Append(rules).Append("COMMIT\n");
        return sb.ToString();
    }

    /// <summary>
    /// A partial sync's input, given what the last successful apply left (<paramref name="applied"/>). Only services
    /// that changed, came or went are looked at: their KUBE-EXT/SVC/SVL/SEP chains are written or deleted, and
    /// KUBE-SERVICES, KUBE-NODEPORTS and KUBE-EXTERNAL-SERVICES are changed rule by rule, <c>-D</c> with the exact text
    /// of a rule that goes away or changes and <c>-A</c> for a new one, instead of being rewritten whole. Service rules
    /// match disjoint frontends and node ports, so their order means nothing; only kube-proxy's node-port jump must stay
    /// last in nat KUBE-SERVICES, so a new rule there is inserted at the top (<c>-I KUBE-SERVICES 1</c>). KUBE-POSTROUTING and
    /// KUBE-MARK-MASQ are left alone: they depend only on the options, which an instance never changes. A rule the
    /// kernel no longer has fails its <c>-D</c> and with it the table's batch; the caller then forgets and syncs in
    /// full. Empty when nothing changed.
    /// </summary>
    public static string RenderPartial(IReadOnlyCollection<ServicePortState> desired, IEnumerable<ServicePortState> applied, ServiceProxyOptions options)
    {
        var skipped = new List<ServiceSkip>();
        var ordered = ServiceModel.Renderable(desired, skipped);
        var sb = new StringBuilder();
        foreach (var reason in skipped)
        {
            sb.Append("# loom: ").Append(reason).Append('\n');
        }

        // By value, backends included: a service equal to what was applied renders the same rules, so it is skipped.
        var before = applied.ToHashSet();
        var now = ordered.ToHashSet();
        var gone = before.Where(s => !now.Contains(s)).ToList();
        var came = ordered.Where(s => !before.Contains(s)).ToList();
        var filter = new StringBuilder();
        AppendRuleDelta(filter, gone.SelectMany(FilterRules), came.SelectMany(FilterRules));
        if (filter.Length > 0)
        {
            sb.Append("*filter\n").Append(filter).Append("COMMIT\n");
        }

        var declared = new List<string>();
        var rules = new StringBuilder();
        // Jumps before the -X below: a chain still referenced cannot be deleted. The restore creates every declared
        // chain before it runs any rule line, so a new jump may come before its chain's rules.
        AppendRuleDelta(rules, gone.SelectMany(NatEntryRules), came.SelectMany(NatEntryRules), insertAtTop: ServicesChain);
        foreach (var s in came.Where(s => s.HasBackends))
        {
            AppendServiceChains(declared, rules, s, options);
        }

        // Chain names are per service (and backend), so an unchanged service owns none of the chains of those that went.
        var active = came.SelectMany(ChainsOf).ToHashSet(StringComparer.Ordinal);
        AppendStaleChains(declared, rules, gone.SelectMany(ChainsOf), active);
        if (rules.Length > 0)
        {
            var chains = new StringBuilder();
            AppendDeclared(chains, declared);
            sb.Append("*nat\n").Append(chains).Append(rules).Append("COMMIT\n");
        }

        return sb.ToString();
    }

    /// <summary>Restore input that removes everything <see cref="Render"/> could have created; null when nothing is there.</summary>
    public static string? RenderFlush(IptablesSnapshot filter, IptablesSnapshot nat)
    {
        var sb = new StringBuilder();
        foreach (var (table, snap, own) in new[]
                 {
                     ("filter", filter, (Func<string, bool>)(c => c is ServicesChain or ExternalServicesChain or NodePortsChain)),
                     ("nat", nat, c => c is ServicesChain or NodePortsChain or PostroutingChain or MarkMasqChain || IsServiceChain(c)),
                 })
        {
            var jumps = JumpRules.Where(j => j.Table == table && snap.Rules.Contains(j.Rule)).Select(j => j.Rule).ToList();
            var chains = snap.Chains.Where(own).Order(StringComparer.Ordinal).ToList();
            if (jumps.Count == 0 && chains.Count == 0)
            {
                continue;
            }

            sb.Append('*').Append(table).Append('\n');
            foreach (var c in chains)
            {
                sb.Append(ChainLine(c));
            }

            foreach (var j in jumps)
            {
                sb.Append("-D ").Append(j.AsSpan(3)).Append('\n');
            }

            foreach (var c in chains)
            {
                sb.Append("-X ").Append(c).Append('\n');
            }

            sb.Append("COMMIT\n");
        }

        return sb.Length == 0 ? null : sb.ToString();
    }

    // -D for each rule only in before, -A for each only in after (-I CHAIN 1 for insertAtTop); deletes first.
    private static void AppendRuleDelta(StringBuilder sb, IEnumerable<string> before, IEnumerable<string> after, string? insertAtTop = null)
    {
        var top = insertAtTop is null ? null : "-A " + insertAtTop + " ";
        var old = before.ToHashSet(StringComparer.Ordinal);
        var now = after.ToList();
        var keep = now.ToHashSet(StringComparer.Ordinal);
        foreach (var r in old.Where(r => !keep.Contains(r)))
        {
            sb.Append("-D").Append(r.AsSpan(2)).Append('\n');
        }

        foreach (var r in now.Where(r => !old.Contains(r)))
        {
            if (top is not null && r.StartsWith(top, StringComparison.Ordinal))
            {
                sb.Append("-I ").Append(insertAtTop).Append(" 1 ").Append(r.AsSpan(top.Length)).Append('\n');
                continue;
            }

            sb.Append(r).Append('\n');
        }
    }

    private static void AppendStaleChains(List<string> declared, StringBuilder rules, IEnumerable<string> had, HashSet<string> active)
    {
        foreach (var c in had.Where(c => !active.Contains(c)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            // Declaring the chain flushes it, which drops its references; then it can go.
            declared.Add(c);
            rules.Append("-X ").Append(c).Append('\n');
        }
    }

    // iptables-nft (1.8.9) with --noflush takes over twice as long for thousands of chains declared in hash
    // order as for the same chains declared sorted by name; the order of declarations means nothing else.
    private static void AppendDeclared(StringBuilder chains, List<string> declared)
    {
        declared.Sort(StringComparer.Ordinal);
        foreach (var c in declared)
        {
            chains.Append(ChainLine(c));
        }
    }

    private static void AppendMissingJumps(StringBuilder sb, string table, IptablesSnapshot snap)
    {
        foreach (var (t, rule) in JumpRules)
        {
            if (t == table && !snap.Rules.Contains(rule))
            {
                // Prepend, as kube-proxy's EnsureRule(Prepend) does, so other owners' rules cannot shadow ours.
                var rest = rule.AsSpan(3);
                var sp = rest.IndexOf(' ');
                sb.Append("-I ").Append(rest[..sp]).Append(" 1").Append(rest[sp..]).Append('\n');
            }
        }
    }

    private static string Match(Frontend f) =>
        string.Create(CultureInfo.InvariantCulture, $" -m {f.ProtocolName} -p {f.ProtocolName} -d {f.Address} --dport {f.Port}");

    private static string ChainLine(string chain) => ":" + chain + " - [0:0]\n";

    // kube-proxy quotes comments with spaces and writes single words bare (iptables-save quotes both); RuleText also
    // escapes, strips control characters and cuts to the kernel's limit, so no comment can end the rule or the line.
    private static string Quote(string comment) => RuleText.IptablesComment(comment);
}
