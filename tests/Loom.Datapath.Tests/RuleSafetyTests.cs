using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using CsCheck;
using Loom.Core.Model;
using Loom.Datapath.Services;
using Loom.Datapath.Services.Ebpf;
using static Loom.Datapath.Tests.Fixtures;

namespace Loom.Datapath.Tests;

/// <summary>
/// Whatever the store holds, the renderers write one harmless rule per intended rule: the injection a Service port
/// name could carry into a root firewall, names past the kernel's comment limits, duplicate frontends and bad
/// timeouts all render (or are left out with a reason) without failing the sync for every other service.
/// </summary>
public sealed partial class RuleSafetyTests
{
    internal const string Injection = "x\"\n-A KUBE-MARK-MASQ -j ACCEPT\n#";

    private static string Iptables(params ServicePortState[] desired) =>
        IptablesRules.Render(desired, IptablesSnapshot.Empty, IptablesSnapshot.Parse(""), KubeProxyTest);

    private static string Nftables(params ServicePortState[] desired) =>
        NftablesRules.Render(desired, _ => true, NftSnapshot.Missing, true, KubeProxyTest);

    private static Service WebService(string? portName) => new()
    {
        Namespace = "default",
        Name = "webpod",
        ClusterIp = IPAddress.Parse("10.96.0.100"),
        Ports = [new ServicePort(portName, Protocol.Tcp, 80, 80)],
        Selector = new Dictionary<string, string> { ["app"] = "web" },
    };

    private static Endpoint Pod(string ip) => new()
    {
        Namespace = "default", Name = "p" + ip.Replace('.', '-'), Node = "n", ContainerId = "c", IPs = [IPAddress.Parse(ip)],
        Labels = new Dictionary<string, string> { ["app"] = "web" }, Ready = true,
    };

    /// <summary>iptables-restore's word splitting (xshared.c add_param_to_argv): null when a quote is left open.</summary>
    internal static List<string>? IptablesWords(string line)
    {
        var words = new List<string>();
        var cur = new StringBuilder();
        bool quoted = false, escaped = false, started = false;
        foreach (var c in line)
        {
            if (quoted)
            {
                if (escaped)
                {
                    if (c is not ('"' or '\\'))
                    {
                        cur.Append('\\');
                    }

                    cur.Append(c);
                    escaped = false;
                }
                else if (c == '\\')
                {
                    escaped = true;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    cur.Append(c);
                }

                continue;
            }

            if (c == '"')
            {
                quoted = started = true;
            }
            else if (c is ' ' or '\t')
            {
                if (started || cur.Length > 0)
                {
                    words.Add(cur.ToString());
                    cur.Clear();
                    started = false;
                }
            }
            else
            {
                cur.Append(c);
            }
        }

        if (quoted)
        {
            return null;
        }

        if (started || cur.Length > 0)
        {
            words.Add(cur.ToString());
        }

        return words;
    }

    private static IEnumerable<string> Comments(string restore) =>
        restore.Split('\n').Where(l => l.StartsWith("-A ", StringComparison.Ordinal) && l.Contains("--comment", StringComparison.Ordinal)).Select(l =>
        {
            var w = IptablesWords(l) ?? throw new InvalidOperationException("open quote: " + l);
            return w[w.IndexOf("--comment") + 1];
        });

    [GeneratedRegex(@"\A(\*(filter|nat)|:[A-Z0-9-]+ - \[0:0\]|-[AIX] [A-Z0-9-]+( .*)?|COMMIT|# loom: [ -~]*)\z")]
    private static partial Regex IptablesLine();

    [GeneratedRegex(@"\A((add|flush|delete) (table|chain|rule|map|set|element) ip kube-proxy( .*)?|# loom: [ -~]*)\z")]
    private static partial Regex NftLine();

    [GeneratedRegex(@"(?:chain ip kube-proxy|goto|jump|rule ip kube-proxy) ([^ \n]+)")]
    private static partial Regex NftChainRef();

    [GeneratedRegex(@"\A[A-Za-z0-9/_.-]{1,256}\z")]
    private static partial Regex NftSafeName();

    [Fact]
    public void The_injection_is_refused_before_it_reaches_a_renderer_and_the_rest_still_renders()
    {
        var skipped = new List<ServiceSkip>();
        var other = WebService("http") with { Name = "other", ClusterIp = IPAddress.Parse("10.96.0.101") };
        var states = ServiceModel.Compute([WebService(Injection), other], [Pod("10.244.1.2")], skipped);
        Assert.Equal(["default/other:http"], states.Select(s => s.Name.ToString()));
        var reason = Assert.Single(skipped).Text;
        Assert.StartsWith("service default/webpod: spec.ports[0].name: Invalid value: ", reason, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', reason);
    }

    [Fact]
    public void Stored_nulls_select_nothing_instead_of_failing_the_sync()
    {
        var skipped = new List<ServiceSkip>();
        var states = ServiceModel.Compute(
            [WebService("http") with { Selector = null! }, WebService(null) with { Name = "ports", ClusterIp = IPAddress.Parse("10.96.0.9"), Ports = null! }],
            [Pod("10.244.1.2") with { Labels = null! }, Pod("10.244.1.3") with { IPs = null! }],
            skipped);
        Assert.Empty(Assert.Single(states).Backends);
        Assert.StartsWith("service default/ports: spec.ports: Required value", Assert.Single(skipped).Text, StringComparison.Ordinal);
    }

    [Fact]
    public void The_injection_given_straight_to_iptables_renders_one_escaped_comment_and_no_extra_rule()
    {
        var s = Port("default", "webpod", Injection, "10.96.0.100", 80, ["10.244.1.2", "10.244.2.2"]);
        var script = Iptables(s, Port("ns4", "svc4", Injection, "10.96.0.104", 80, []));
        var lines = script.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(lines, l => Assert.Matches(IptablesLine(), l));
        Assert.Equal(["-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000"], lines.Where(l => l.StartsWith("-A KUBE-MARK-MASQ", StringComparison.Ordinal)));
        // The "-j ACCEPT" of the name stays inside its comment: no rule's own target is ACCEPT.
        Assert.All(lines.Where(l => l.StartsWith('-')), l =>
        {
            var words = IptablesWords(l)!;
            Assert.NotEqual("ACCEPT", words[words.IndexOf("-j") + 1]);
        });
        Assert.Contains("-A KUBE-SERVICES -m comment --comment \"default/webpod:x\\\"?-A KUBE-MARK-MASQ -j ACCEPT?# cluster IP\" -m tcp", script, StringComparison.Ordinal);
        Assert.All(Comments(script).Where(c => !c.StartsWith("kubernetes ", StringComparison.Ordinal)), c => Assert.StartsWith(c.StartsWith("ns4", StringComparison.Ordinal) ? "ns4/svc4:x\"?-A" : "default/webpod:x\"?-A", c, StringComparison.Ordinal));
    }

    [Fact]
    public void The_injection_given_straight_to_nftables_renders_safe_names_and_comments()
    {
        var s = Port("default", "webpod", Injection, "10.96.0.100", 80, ["10.244.1.2"], affinity: SessionAffinity.ClientIP);
        var script = Nftables(s, Port("ns4", "svc4", Injection, "10.96.0.104", 80, []));
        var lines = script.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(lines, l => Assert.Matches(NftLine(), l));
        Assert.All(NftChainRef().Matches(script).Select(m => m.Groups[1].Value.TrimEnd(';')), n => Assert.Matches(NftSafeName(), n));
        Assert.Contains("add element ip kube-proxy no-endpoint-services { 10.96.0.104 . tcp . 80 comment \"ns4/svc4:x'?-A KUBE-MARK-MASQ -j ACCEPT?#\" : goto reject-chain }", lines);
        Assert.Contains(lines, l => l.StartsWith("add chain ip kube-proxy service-", StringComparison.Ordinal) && l.EndsWith("-default/webpod/tcp/x__-A_KUBE-MARK-MASQ_-j_ACCEPT__", StringComparison.Ordinal));
    }

    [Fact]
    public void Names_sanitised_alike_still_get_distinct_nft_chains()
    {
        var a = Port("default", "webpod", "a\"b", "10.96.0.100", 80, ["10.244.1.2"]);
        var b = Port("default", "webpod", "a\nb", "10.96.0.101", 80, ["10.244.1.2"]);
        Assert.NotEqual(NftablesRules.ServiceChain(a), NftablesRules.ServiceChain(b));
        Assert.EndsWith("-default/webpod/tcp/a_b", NftablesRules.ServiceChain(a), StringComparison.Ordinal);
    }

    [Fact]
    public void Stale_nft_names_this_renderer_could_not_have_written_are_left_alone()
    {
        var existing = NftSnapshot.Parse("""
            {"nftables": [{"table": {"family": "ip", "name": "kube-proxy"}},
              {"chain": {"name": "service-AAAAAAAA-ns/old/tcp/p80"}}, {"chain": {"name": "x/y ; delete table ip filter"}},
              {"set": {"name": "affinity-AAAAAAAA-ns/old/tcp/p80__10.0.0.1/80", "timeout": 10}}, {"set": {"name": "affinity-\n"}}]}
            """);
        var script = NftablesRules.Render([Webpod()], _ => true, existing, false, KubeProxyTest);
        Assert.Contains("delete chain ip kube-proxy service-AAAAAAAA-ns/old/tcp/p80\n", script, StringComparison.Ordinal);
        Assert.Contains("delete set ip kube-proxy affinity-AAAAAAAA-ns/old/tcp/p80__10.0.0.1/80\n", script, StringComparison.Ordinal);
        Assert.DoesNotContain("x/y", script, StringComparison.Ordinal);
        Assert.DoesNotContain("affinity-\n", script, StringComparison.Ordinal);
    }

    [Fact]
    public void Long_names_are_cut_to_the_kernels_comment_limits()
    {
        var name = new string('n', 300);
        var s = Port(name, name, name, "10.96.0.100", 80, ["10.244.1.2"]);
        var empty = Port(name, name + "x", name, "10.96.0.101", 80, []);
        var restore = Iptables(s, empty);
        Assert.All(Comments(restore), c => Assert.InRange(c.Length, 1, RuleText.IptablesCommentMax));
        Assert.Contains(Comments(restore), c => c.Length == RuleText.IptablesCommentMax);
        var nft = Nftables(s, empty);
        var comment = Assert.Single(Regex.Matches(nft, "comment \"([^\"]*)\" : goto reject-chain"));
        Assert.Equal(RuleText.NftCommentMax, comment.Groups[1].Value.Length);
        Assert.All(NftChainRef().Matches(nft).Select(m => m.Groups[1].Value), n => Assert.Matches(NftSafeName(), n));
    }

    [Fact]
    public void Iptables_comments_of_any_text_are_one_word_on_one_line()
    {
        var chars = Gen.OneOf<char>(Gen.Char, Gen.OneOf('"', '\\', '\n', '\r', ' ', '\t', '#', '\0', 'a', '-', '\u00e9'));
        chars.Array[0, 400].Select(a => new string(a)).Sample(text =>
        {
            var comment = RuleText.IptablesComment(text);
            Assert.DoesNotContain('\n', comment);
            Assert.DoesNotContain('\r', comment);
            Assert.Equal([RuleText.Printable(text, RuleText.IptablesCommentMax)], IptablesWords("--comment " + comment)?.Skip(1) ?? ["<open quote>"]);
            Assert.True(Encoding.UTF8.GetByteCount(RuleText.Printable(text, RuleText.IptablesCommentMax)) <= RuleText.IptablesCommentMax);
        });
    }

    [Fact]
    public void Rendered_scripts_for_any_port_name_have_only_intended_lines()
    {
        var benign = new[] { Port("default", "webpod", "http", "10.96.0.100", 80, ["10.244.1.2"]), Port("default", "empty", "http", "10.96.0.101", 80, []) };
        var benignIptables = Iptables(benign).Split('\n').Length;
        var benignNft = Nftables(benign).Split('\n').Length;
        var chars = Gen.OneOf<char>(Gen.Char['\0', '\u007f'], Gen.OneOf('"', '\\', '\n', ' ', '#', ';', '}', '{'));
        chars.Array[1, 80].Select(a => new string(a)).Sample(name =>
        {
            var s = Port("default", "webpod", name, "10.96.0.100", 80, ["10.244.1.2"]);
            var e = Port("default", "empty", name, "10.96.0.101", 80, []);
            var restore = Iptables(s, e);
            Assert.All(restore.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => Assert.Matches(IptablesLine(), l));
            Assert.Equal(benignIptables, restore.Split('\n').Length);
            Assert.Equal(8, Comments(restore).Count()); // reject, cluster IP, masq, endpoint pick, hairpin, DNAT, SNAT, node-port tail
            var nft = Nftables(s, e);
            Assert.Equal(benignNft, nft.Split('\n').Length);
            Assert.All(nft.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => Assert.Matches(NftLine(), l));
            Assert.All(NftChainRef().Matches(nft).Select(m => m.Groups[1].Value), n => Assert.Matches(NftSafeName(), n));
        }, iter: 300);
    }

    [Fact]
    public void Node_port_scripts_for_any_port_name_have_only_intended_lines()
    {
        static ServicePortState[] NodePorts(string name) =>
        [
            Port("default", "webpod", name, "10.96.0.100", 80, []) with
            {
                Type = ServiceType.LoadBalancer, NodePort = 30080, ExternalIps = [IPAddress.Parse("192.168.99.1")], HealthCheckNodePort = 30001,
                ExternalTrafficPolicy = TrafficPolicy.Local, InternalTrafficPolicy = TrafficPolicy.Local,
                Backends = [new BackendAddress(IPAddress.Parse("10.244.1.2"), 80) { IsLocal = true }, new BackendAddress(IPAddress.Parse("10.244.2.2"), 80)],
            },
            Port("default", "empty", name, "10.96.0.101", 80, []) with { Type = ServiceType.NodePort, NodePort = 30081, ExternalIps = [IPAddress.Parse("192.168.99.1")] },
        ];
        var benignIptables = Iptables(NodePorts("http")).Split('\n').Length;
        var benignNft = Nftables(NodePorts("http")).Split('\n').Length;
        var chars = Gen.OneOf<char>(Gen.Char['\0', '\u007f'], Gen.OneOf('"', '\\', '\n', ' ', '#', ';', '}', '{'));
        chars.Array[1, 80].Select(a => new string(a)).Sample(name =>
        {
            var restore = Iptables(NodePorts(name));
            Assert.All(restore.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => Assert.Matches(IptablesLine(), l));
            Assert.Equal(benignIptables, restore.Split('\n').Length);
            Assert.All(Comments(restore), c => Assert.InRange(c.Length, 1, RuleText.IptablesCommentMax));
            var nft = Nftables(NodePorts(name));
            Assert.Equal(benignNft, nft.Split('\n').Length);
            Assert.All(nft.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => Assert.Matches(NftLine(), l));
            // Element lists separate "key : goto chain" items with ", ".
            Assert.All(NftChainRef().Matches(nft).Select(m => m.Groups[1].Value.TrimEnd(',')), n => Assert.Matches(NftSafeName(), n));
        }, iter: 200);
    }

    [Fact]
    public void Two_services_on_one_frontend_render_the_first_and_report_the_other()
    {
        var a = Port("default", "alpha", null, "10.96.0.100", 80, ["10.244.1.2"]);
        var b = Port("default", "beta", null, "10.96.0.100", 80, []);
        var c = Port("default", "gamma", null, "10.96.0.100", 80, ["10.244.2.2"]);
        var nft = Nftables(c, b, a);
        Assert.Contains($"add element ip kube-proxy service-ips {{ 10.96.0.100 . tcp . 80 : goto {NftablesRules.ServiceChain(a)} }}", nft, StringComparison.Ordinal);
        Assert.DoesNotContain("no-endpoint-services { 10.96.0.100", nft, StringComparison.Ordinal);
        Assert.DoesNotContain(NftablesRules.ServiceChain(c), nft, StringComparison.Ordinal);
        Assert.Contains("# loom: default/beta (10.96.0.100:80/tcp): skipped: frontend 10.96.0.100:80/tcp is already taken by default/alpha", nft, StringComparison.Ordinal);
        var restore = Iptables(c, b, a);
        Assert.Single(restore.Split('\n'), l => l.Contains("--dport 80 -j KUBE-SVC-", StringComparison.Ordinal));
        Assert.DoesNotContain("has no endpoints", restore, StringComparison.Ordinal);

        var skipped = new List<ServiceSkip>();
        Assert.Equal([a], ServiceModel.Renderable([c, b, a], skipped));
        Assert.Equal(2, skipped.Count);
    }

    [Fact]
    public void Two_stored_services_on_one_cluster_ip_keep_the_first_by_key()
    {
        var skipped = new List<ServiceSkip>();
        var states = ServiceModel.Compute([WebService(null) with { Name = "zeta" }, WebService(null) with { Name = "alpha" }], [Pod("10.244.1.2")], skipped);
        Assert.Equal("default/alpha", Assert.Single(states).Name.ToString());
        Assert.Contains("already taken by default/alpha", Assert.Single(skipped).Text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(-5, 1)]
    [InlineData(0, 1)]
    [InlineData(86401, 86400)]
    [InlineData(int.MaxValue, 86400)]
    public void Affinity_timeouts_out_of_range_are_clamped(int timeout, int clamped)
    {
        var s = Port("default", "webpod", null, "10.96.0.100", 80, ["10.244.1.2"], affinity: SessionAffinity.ClientIP, timeout: timeout);
        Assert.Contains($"--rcheck --seconds {clamped} --reap", Iptables(s), StringComparison.Ordinal);
        Assert.Contains($"flags dynamic,timeout ; timeout {clamped}s ; }}", Nftables(s), StringComparison.Ordinal);
        var skipped = new List<ServiceSkip>();
        Assert.Equal(clamped, Assert.Single(ServiceModel.Renderable([s], skipped)).AffinityTimeoutSeconds);
        Assert.Contains("clamped", Assert.Single(skipped).Text, StringComparison.Ordinal);
    }

    [Fact]
    public void Ports_no_rule_can_express_are_left_out_with_a_reason()
    {
        var good = Port("default", "good", null, "10.96.0.100", 80, ["10.244.1.2"]);
        var bad = new[]
        {
            Port("default", "v6", null, "fd00::1", 80, ["10.244.1.2"]),
            Port("default", "port", null, "10.96.0.101", 70000, ["10.244.1.2"]),
            Port("default", "target", null, "10.96.0.102", 80, ["10.244.1.2"], targetPort: -1),
            Port("default", "proto", null, "10.96.0.103", 80, ["10.244.1.2"], protocol: (Protocol)9),
            Port("default", "backend", null, "10.96.0.104", 80, ["fd00::2"]),
        };
        var skipped = new List<ServiceSkip>();
        Assert.Equal([good], ServiceModel.Renderable([good, .. bad], skipped));
        Assert.Equal(bad.Length, skipped.Count);
        var restore = Iptables([good, .. bad]);
        Assert.Equal(5, restore.Split('\n').Count(l => l.StartsWith("# loom: ", StringComparison.Ordinal)));
        Assert.DoesNotContain("70000", restore.Split('\n').Where(l => !l.StartsWith('#')), StringComparer.Ordinal);
        var nft = Nftables([good, .. bad]);
        Assert.Contains("10.96.0.100 . tcp . 80", nft, StringComparison.Ordinal);
        Assert.DoesNotContain("fd00", string.Join('\n', nft.Split('\n').Where(l => !l.StartsWith('#'))), StringComparison.Ordinal);
    }

    [Fact]
    public void A_maglev_table_smaller_than_the_backends_or_with_duplicates_does_not_throw_in_the_sync_path()
    {
        var names = Enumerable.Range(0, 300).Select(i => $"10.244.{i / 250}.{i % 250}:80").ToArray();
        var table = Maglev.TableTruncated(names, Maglev.MinTableSize);
        Assert.Equal(Maglev.MinTableSize, table.Length);
        Assert.Equal(Maglev.MinTableSize, table.Distinct().Count());
        var kept = names.Order(StringComparer.Ordinal).Take(Maglev.MinTableSize).ToHashSet();
        Assert.All(table, i => Assert.Contains(names[i], kept));

        var dup = Maglev.TableTruncated(["a:1", "b:1", "a:1"], Maglev.MinTableSize);
        Assert.Equal([0, 1], dup.Distinct().Order());
        Assert.Equal(Maglev.Table(["a:1", "b:1"], Maglev.MinTableSize), dup);
    }
}
