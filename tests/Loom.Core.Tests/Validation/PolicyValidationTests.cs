using Loom.Core.Model;
using Loom.Core.Selection;
using Loom.Core.Validation;

namespace Loom.Core.Tests.Validation;

public sealed class PolicyValidationTests
{
    private static NetworkPolicy Policy(params NetworkPolicyIngressRule[] ingress) => new()
    {
        Namespace = "default",
        Name = "allow-web",
        PodSelector = new LabelSelector { MatchLabels = new Dictionary<string, string> { ["app"] = "web" } },
        Ingress = ingress,
    };

    private static NetworkPolicyIngressRule From(params NetworkPolicyPeer[] peers) => new() { From = peers };

    private static NetworkPolicyIngressRule On(params NetworkPolicyPort[] ports) => new() { Ports = ports };

    private static NetworkPolicyPeer Block(string cidr, params string[] except) => new() { IPBlock = new IPBlock { Cidr = cidr, Except = except } };

    private static List<string> Errors(NetworkPolicy p) => PolicyValidation.Validate(p).Select(e => e.ToString()).ToList();

    [Fact]
    public void A_valid_policy_has_no_errors()
    {
        var selector = new LabelSelector { MatchExpressions = [new LabelSelectorRequirement("tier", SelectorOperator.In, ["a", "b"]), new LabelSelectorRequirement("x", SelectorOperator.Exists, [])] };
        Assert.Empty(Errors(Policy(
            From(new NetworkPolicyPeer { PodSelector = selector, NamespaceSelector = new LabelSelector() }, Block("10.0.0.1/8", "10.1.0.0/16"), Block("2001:db8::/32", "2001:db8:1::/48")),
            On(new NetworkPolicyPort { Port = "80", EndPort = 90 }, new NetworkPolicyPort { Port = "http" }, new NetworkPolicyPort { Protocol = Protocol.Udp }))
            with { PolicyTypes = [PolicyType.Ingress, PolicyType.Egress], Egress = [new NetworkPolicyEgressRule { To = [Block("0.0.0.0/0")] }] }));
    }

    [Fact]
    public void Names_are_checked()
    {
        var errors = Errors(Policy() with { Namespace = "Bad_NS", Name = "" });
        Assert.Contains(errors, e => e.StartsWith("metadata.namespace: Invalid value: \"Bad_NS\"", StringComparison.Ordinal));
        Assert.Contains("metadata.name: Required value: name or generateName is required", errors);
    }

    [Fact]
    public void Selector_operators_values_and_labels_are_checked_with_kubectl_paths()
    {
        var bad = new LabelSelector
        {
            MatchLabels = new Dictionary<string, string> { ["bad key"] = "v" },
            MatchExpressions =
            [
                new LabelSelectorRequirement("a", (SelectorOperator)9, []),
                new LabelSelectorRequirement("b", SelectorOperator.In, []),
                new LabelSelectorRequirement("c", SelectorOperator.Exists, ["x"]),
                new LabelSelectorRequirement("d", SelectorOperator.NotIn, ["bad value!"]),
            ],
        };
        var errors = Errors(Policy() with { PodSelector = bad });
        Assert.Contains(errors, e => e.StartsWith("spec.podSelector.matchLabels: Invalid value: \"bad key\"", StringComparison.Ordinal));
        Assert.Contains("spec.podSelector.matchExpressions[0].operator: Unsupported value: \"9\": supported values: \"DoesNotExist\", \"Exists\", \"In\", \"NotIn\"", errors);
        Assert.Contains("spec.podSelector.matchExpressions[1].values: Required value: must be specified when `operator` is 'In' or 'NotIn'", errors);
        Assert.Contains("spec.podSelector.matchExpressions[2].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'", errors);
        Assert.Contains(errors, e => e.StartsWith("spec.podSelector.matchExpressions[3].values[0]: Invalid value: \"bad value!\"", StringComparison.Ordinal));
        var peer = Errors(Policy(From(new NetworkPolicyPeer { NamespaceSelector = new LabelSelector { MatchExpressions = [new LabelSelectorRequirement("b", SelectorOperator.NotIn, [])] } })));
        Assert.Equal(["spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"], peer);
    }

    [Fact]
    public void A_peer_sets_exactly_one_of_ipblock_or_selectors()
    {
        Assert.Equal(["spec.ingress[0].from[0]: Required value: must specify a peer"], Errors(Policy(From(new NetworkPolicyPeer()))));
        Assert.Equal(["spec.ingress[0].from[1]: Forbidden: may not specify both ipBlock and another peer"],
            Errors(Policy(From(Block("10.0.0.0/8"), new NetworkPolicyPeer { PodSelector = new LabelSelector(), IPBlock = new IPBlock { Cidr = "10.0.0.0/8" } }))));
        Assert.Empty(Errors(Policy(From(new NetworkPolicyPeer { PodSelector = new LabelSelector(), NamespaceSelector = new LabelSelector() }))));
    }

    [Fact]
    public void An_ipblock_cidr_parses_and_every_except_is_a_strict_subset()
    {
        Assert.Equal(["spec.ingress[0].from[0].ipBlock.cidr: Invalid value: \"10.0.0/8\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"],
            Errors(Policy(From(Block("10.0.0/8")))));
        Assert.Equal(["spec.ingress[0].from[0].ipBlock.cidr: Required value"], Errors(Policy(From(Block("")))));
        var errors = Errors(Policy(From(Block("10.0.0.0/24"), Block("10.0.0.0/8", "10.0.0.0/8", "11.0.0.0/16", "10.1.0.0/16", "2001:db8::/64", "nope"))));
        Assert.Equal(
        [
            "spec.ingress[0].from[1].ipBlock.except[0]: Invalid value: \"10.0.0.0/8\": must be a strict subset of `cidr`",
            "spec.ingress[0].from[1].ipBlock.except[1]: Invalid value: \"11.0.0.0/16\": must be a strict subset of `cidr`",
            "spec.ingress[0].from[1].ipBlock.except[3]: Invalid value: \"2001:db8::/64\": must be a strict subset of `cidr`",
            "spec.ingress[0].from[1].ipBlock.except[4]: Invalid value: \"nope\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
        ], errors);
    }

    [Theory]
    [InlineData("0", null, "spec.ingress[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive")]
    [InlineData("65536", null, "spec.ingress[0].ports[0].port: Invalid value: 65536: must be between 1 and 65535, inclusive")]
    [InlineData("-1", null, "spec.ingress[0].ports[0].port: Invalid value: -1: must be between 1 and 65535, inclusive")]
    [InlineData("Http", null, "spec.ingress[0].ports[0].port: Invalid value: \"Http\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")]
    [InlineData("a-very-long-port-name", null, "spec.ingress[0].ports[0].port: Invalid value: \"a-very-long-port-name\": must be no more than 15 characters")]
    [InlineData(null, 80, "spec.ingress[0].ports[0].port: Required value: must be specified when endPort is specified")]
    [InlineData("http", 80, "spec.ingress[0].ports[0].endPort: Forbidden: may not be specified when `port` is non-numeric")]
    [InlineData("80", 79, "spec.ingress[0].ports[0].endPort: Invalid value: 79: must be greater than or equal to `port`")]
    [InlineData("80", 70000, "spec.ingress[0].ports[0].endPort: Invalid value: 70000: must be between 1 and 65535, inclusive")]
    public void Ports_are_numbers_or_iana_names_and_endport_a_numeric_range(string? port, int? endPort, string expected) =>
        Assert.Equal([expected], Errors(Policy(On(new NetworkPolicyPort { Port = port, EndPort = endPort }))));

    [Fact]
    public void Protocols_are_tcp_and_udp_and_sctp_is_refused_naming_the_datapath()
    {
        Assert.Contains(Errors(Policy(On(new NetworkPolicyPort { Protocol = (Protocol)2 }))), e => e.StartsWith("spec.ingress[0].ports[0].protocol: Unsupported value", StringComparison.Ordinal));
        var errors = new List<FieldError>();
        Assert.Equal(Protocol.Udp, PolicyValidation.Protocol(errors, "UDP", "p"));
        Assert.Null(PolicyValidation.Protocol(errors, "SCTP", "spec.egress[0].ports[1].protocol"));
        Assert.Equal("spec.egress[0].ports[1].protocol: Unsupported value: \"SCTP\": supported values: \"TCP\", \"UDP\" (Loom's datapath carries TCP and UDP; SCTP is not supported)",
            Assert.Single(errors).ToString());
    }

    [Fact]
    public void Policy_types_are_ingress_or_egress_at_most_two()
    {
        Assert.Contains(Errors(Policy() with { PolicyTypes = [(PolicyType)5] }), e => e.StartsWith("spec.policyTypes[0]: Unsupported value: \"5\"", StringComparison.Ordinal));
        Assert.Contains(Errors(Policy() with { PolicyTypes = [PolicyType.Ingress, PolicyType.Egress, PolicyType.Ingress] }),
            e => e.StartsWith("spec.policyTypes: Invalid value", StringComparison.Ordinal));
    }

    [Fact]
    public void Egress_rules_are_checked_under_to()
    {
        var p = Policy() with { Egress = [new NetworkPolicyEgressRule { To = [new NetworkPolicyPeer()], Ports = [new NetworkPolicyPort { Port = "0" }] }] };
        Assert.Equal(["spec.egress[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive", "spec.egress[0].to[0]: Required value: must specify a peer"], Errors(p));
    }

    [Fact]
    public void A_namespace_has_a_dns_label_name_and_valid_labels()
    {
        Assert.Empty(PolicyValidation.Validate(new ClusterNamespace { Name = "kube-system", Labels = new Dictionary<string, string> { ["team"] = "a" } }));
        var errors = PolicyValidation.Validate(new ClusterNamespace { Name = "a.b", Labels = new Dictionary<string, string> { ["team"] = "a b" } }).Select(e => e.ToString()).ToList();
        Assert.Contains(errors, e => e.StartsWith("metadata.name: Invalid value: \"a.b\"", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("metadata.labels: Invalid value: \"a b\"", StringComparison.Ordinal));
    }
}
