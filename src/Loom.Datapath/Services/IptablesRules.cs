using System.Globalization;
using System.Text;
using Loom.Core.Model;

namespace Loom.Datapath.Services;

/// <summary>
/// Renders kube-proxy's iptables layout as <c>iptables-restore --noflush</c> input. Facts from kubernetes
/// pkg/proxy/iptables/proxier.go (syncProxyRules, writeServiceToEndpointRules, iptablesJumpChains):
/// KUBE-SERVICES (nat and filter), KUBE-POSTROUTING and KUBE-MARK-MASQ are rewritten on every sync; a service's
/// KUBE-SVC/KUBE-SEP chains only when it changed (partial sync); chains of removed services are flushed and deleted.
/// </summary>
internal static class IptablesRules
{
    public const string ServicesChain = "KUBE-SERVICES";
    public const string PostroutingChain = "KUBE-POSTROUTING";
    public const string MarkMasqChain = "KUBE-MARK-MASQ";

    // kube-proxy's isServiceChainName: every per-service chain starts with one of these.
    private static readonly string[] ServiceChainPrefixes = ["KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-"];

    /// <summary>The hook jumps kube-proxy ensures, written as iptables-save prints them (so presence is a string match).</summary>
    public static readonly (string Table, string Rule)[] JumpRules =
    [
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

    public static string EndpointChain(ServicePortState s, BackendAddress b) => KubeProxyNames.IptablesEndpointChain(s.Name, s.Frontend.ProtocolName, b);

    /// <summary>The nat chains a service owns when programmed: its KUBE-SVC and one KUBE-SEP per backend (none without backends).</summary>
    public static IEnumerable<string> ChainsOf(ServicePortState s) =>
        s.HasBackends ? s.Backends.Select(b => EndpointChain(s, b)).Prepend(ServiceChain(s)) : [];

    /// <summary>
    /// One restore input for both tables. <paramref name="rewrite"/> says which services get their KUBE-SVC/KUBE-SEP
    /// chains (re)written; the others are left as they are in the kernel.
    /// </summary>
    public static string Render(
        IReadOnlyCollection<ServicePortState> desired,
        Func<ServicePortState, bool> rewrite,
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
        sb.Append(ChainLine(ServicesChain));
        AppendMissingJumps(sb, "filter", filter);
        foreach (var s in ordered.Where(s => !s.HasBackends))
        {
            // kube-proxy: a service without endpoints gets no nat chains, only this REJECT (ICMP port unreachable).
            sb.Append("-A KUBE-SERVICES -m comment --comment ").Append(Quote($"{s.Name} has no endpoints"))
              .Append(Match(s.Frontend)).Append(" -j REJECT\n");
        }

        sb.Append("COMMIT\n");

        var active = new HashSet<string>(StringComparer.Ordinal);
        var chains = new StringBuilder();
        var declared = new List<string>();
        var rules = new StringBuilder();
        foreach (var name in new[] { ServicesChain, PostroutingChain, MarkMasqChain })
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
            var svcChain = ServiceChain(s);
            rules.Append("-A KUBE-SERVICES -m comment --comment ").Append(Quote($"{s.Name} cluster IP"))
                 .Append(Match(s.Frontend)).Append(" -j ").Append(svcChain).Append('\n');
            active.UnionWith(ChainsOf(s));
            if (rewrite(s))
            {
                AppendServiceChains(declared, rules, s, options);
            }
        }

        var stale = nat.Chains.Where(c => IsServiceChain(c) && !active.Contains(c)).Order(StringComparer.Ordinal).ToList();
        foreach (var c in stale)
        {
            // Declaring the chain flushes it, which drops its references; then it can go.
            declared.Add(c);
            rules.Append("-X ").Append(c).Append('\n');
        }

        // iptables-nft (1.8.9) with --noflush takes over twice as long for thousands of chains declared in hash
        // order as for the same chains declared sorted by name; the order of declarations means nothing else.
        declared.Sort(StringComparer.Ordinal);
        foreach (var c in declared)
        {
            chains.Append(ChainLine(c));
        }

        sb.Append("*nat\n").Append(chains);
        AppendMissingJumps(sb, "nat", nat);
        sb.Append(rules).Append("COMMIT\n");
        return sb.ToString();
    }

    /// <summary>The KUBE-SVC and KUBE-SEP chains of one service with backends (kube-proxy's order and wording).</summary>
    public static void AppendServiceChains(List<string> chains, StringBuilder rules, ServicePortState s, ServiceProxyOptions options)
    {
        var svcChain = ServiceChain(s);
        var proto = s.Frontend.ProtocolName;
        chains.Add(svcChain);
        foreach (var b in s.Backends)
        {
            chains.Add(EndpointChain(s, b));
        }

        if (options.ClusterCidr is { } cidr)
        {
            // Off-cluster clients reaching a ClusterIP are masqueraded so the reply returns via this node.
            rules.Append("-A ").Append(svcChain).Append(" -m comment --comment ").Append(Quote($"{s.Name} cluster IP"))
                 .Append(Match(s.Frontend)).Append(" ! -s ").Append(cidr).Append(" -j KUBE-MARK-MASQ\n");
        }

        var affinity = s.SessionAffinity == SessionAffinity.ClientIP;
        if (affinity)
        {
            foreach (var b in s.Backends)
            {
                var sep = EndpointChain(s, b);
                rules.Append("-A ").Append(svcChain).Append(" -m comment --comment ").Append(Quote($"{s.Name} -> {b}"))
                     .Append(" -m recent --name ").Append(sep).Append(" --rcheck --seconds ")
                     .Append(s.AffinityTimeoutSeconds.ToString(CultureInfo.InvariantCulture)).Append(" --reap -j ").Append(sep).Append('\n');
            }
        }

        for (var i = 0; i < s.Backends.Count; i++)
        {
            var b = s.Backends[i];
            rules.Append("-A ").Append(svcChain).Append(" -m comment --comment ").Append(Quote($"{s.Name} -> {b}"));
            if (i < s.Backends.Count - 1)
            {
                // Endpoint i of n is taken with 1/(n-i) of what is left: uniform overall; the last one catches the rest.
                rules.Append(" -m statistic --mode random --probability ").Append(Probability(s.Backends.Count - i));
            }

            rules.Append(" -j ").Append(EndpointChain(s, b)).Append('\n');
        }

        foreach (var b in s.Backends)
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

    /// <summary>Restore input that removes everything <see cref="Render"/> could have created; null when nothing is there.</summary>
    public static string? RenderFlush(IptablesSnapshot filter, IptablesSnapshot nat)
    {
        var sb = new StringBuilder();
        foreach (var (table, snap, own) in new[]
                 {
                     ("filter", filter, (Func<string, bool>)(c => c == ServicesChain)),
                     ("nat", nat, c => c is ServicesChain or PostroutingChain or MarkMasqChain || IsServiceChain(c)),
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
