using System.Net;
using Loom.Core.Model;
using Loom.Core.Policy;
using Loom.Core.Selection;

namespace Loom.Core.Tests.Policy;

public sealed class PolicyCompilerTests
{
    private const byte Tcp = 6;
    private const byte Udp = 17;
    private const PolicyEnforcementMode Default = PolicyEnforcementMode.Default;

    private static readonly ContainerPort[] WebPorts = [new("http", 8080, Protocol.Tcp), new("dns", 53, Protocol.Udp)];

    private static Dictionary<string, string> L(params string[] pairs) =>
        pairs.Select(p => p.Split('=')).ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);

    private static LabelSelector Sel(params string[] pairs) => new() { MatchLabels = L(pairs) };

    private static NetworkPolicy Ingress(string name, LabelSelector pods, params NetworkPolicyIngressRule[] rules) =>
        new() { Namespace = "a", Name = name, PodSelector = pods, Ingress = rules };

    private static NetworkPolicyPort P(string? port, Protocol protocol = Protocol.Tcp, int? endPort = null) => new() { Port = port, Protocol = protocol, EndPort = endPort };

    /// <summary>a/db (app=db), a/web (app=web), b/web (app=web, ns team=x), b/other (app=other), kube-system/dns.</summary>
    private static PolicyWorld World(params NetworkPolicy[] policies) => new(policies,
        [new ClusterNamespace { Name = "b", Labels = L("team=x") }],
        [
            ("db", "a", L("app=db"), "10.0.0.1", [new ContainerPort("pg", 5432, Protocol.Tcp)]),
            ("web", "a", L("app=web"), "10.0.0.2", WebPorts),
            ("bweb", "b", L("app=web"), "10.0.0.3", [new ContainerPort("http", 9090, Protocol.Tcp)]),
            ("bother", "b", L("app=other"), "10.0.0.4", []),
            ("dns", "kube-system", L("k8s-app=kube-dns", "pod-template-hash=abc"), "10.0.0.10", [new ContainerPort("dns", 53, Protocol.Udp)]),
        ]);

    private static void Allowed(PolicyWorld w, string src, string dst, byte proto, ushort port, bool expected, PolicyEnforcementMode mode = Default)
    {
        Assert.True(expected == w.Compiled(src, dst, proto, port, mode), $"compiled {src} -> {dst} {proto}/{port}: expected {expected}");
        Assert.True(expected == w.Direct(src, dst, proto, port, mode), $"direct {src} -> {dst} {proto}/{port}: expected {expected}");
    }

    [Fact]
    public void Pod_and_namespace_selector_in_one_peer_is_and_in_two_peers_or()
    {
        var and = World(Ingress("and", Sel("app=db"), new NetworkPolicyIngressRule { From = [new NetworkPolicyPeer { PodSelector = Sel("app=web"), NamespaceSelector = Sel("team=x") }] }));
        Allowed(and, "bweb", "db", Tcp, 5432, true);
        Allowed(and, "web", "db", Tcp, 5432, false);
        Allowed(and, "bother", "db", Tcp, 5432, false);
        var or = World(Ingress("or", Sel("app=db"), new NetworkPolicyIngressRule { From = [new NetworkPolicyPeer { PodSelector = Sel("app=web") }, new NetworkPolicyPeer { NamespaceSelector = Sel("team=x") }] }));
        Allowed(or, "bweb", "db", Tcp, 5432, true);
        Allowed(or, "web", "db", Tcp, 5432, true);
        Allowed(or, "bother", "db", Tcp, 5432, true);
        Allowed(or, "dns", "db", Tcp, 5432, false);
        Allowed(or, "192.168.1.1", "db", Tcp, 5432, false);
    }

    [Theory]
    [InlineData(SelectorOperator.In, new[] { "web" }, new[] { "web" })]
    [InlineData(SelectorOperator.NotIn, new[] { "web" }, new[] { "db" })]
    [InlineData(SelectorOperator.Exists, new string[0], new[] { "web", "db" })]
    [InlineData(SelectorOperator.DoesNotExist, new string[0], new string[0])]
    public void Each_operator_selects_peers_as_kubernetes_does(SelectorOperator op, string[] values, string[] allowedFrom)
    {
        var w = World(Ingress("ops", Sel("app=db"), new NetworkPolicyIngressRule
        {
            From = [new NetworkPolicyPeer { PodSelector = new LabelSelector { MatchExpressions = [new LabelSelectorRequirement("app", op, values)] } }],
        }));
        foreach (var src in new[] { "web", "db" })
        {
            Allowed(w, src, "db", Tcp, 5432, allowedFrom.Contains(src));
        }
    }

    [Fact]
    public void An_endport_range_becomes_its_prefixes_and_admits_exactly_the_range()
    {
        var w = World(Ingress("range", Sel("app=db"), new NetworkPolicyIngressRule { Ports = [P("80", endPort: 8080)] }));
        var policy = PolicyCompiler.Compile(w.Endpoint("db"), w.Input, Default);
        Assert.Equal(PortPrefixes.Cover(80, 8080).Select(p => new PolicyRule(PolicyDirection.Ingress, 0, Tcp, p.Port, p.Bits)), policy.Rules);
        Allowed(w, "web", "db", Tcp, 80, true);
        Allowed(w, "web", "db", Tcp, 8080, true);
        Allowed(w, "web", "db", Tcp, 79, false);
        Allowed(w, "web", "db", Tcp, 8081, false);
        Allowed(w, "web", "db", Udp, 80, false);
    }

    [Fact]
    public void An_ipblock_except_is_a_region_that_allows_nothing()
    {
        var w = World(Ingress("block", Sel("app=db"), new NetworkPolicyIngressRule
        {
            From = [new NetworkPolicyPeer { IPBlock = new IPBlock { Cidr = "192.168.0.0/16", Except = ["192.168.1.0/24"] } }],
            Ports = [P("5432")],
        }));
        var policy = PolicyCompiler.Compile(w.Endpoint("db"), w.Input, Default);
        Assert.Equal([IPNetwork.Parse("192.168.0.0/16"), IPNetwork.Parse("192.168.1.0/24")], policy.Cidrs.Select(c => c.Prefix));
        Assert.All(policy.Cidrs, c => Assert.True(c.Identity >= ReservedIdentity.CidrBase));
        var except = policy.Cidrs[1].Identity;
        Assert.DoesNotContain(policy.Rules, r => r.Identity == except);
        Allowed(w, "192.168.2.1", "db", Tcp, 5432, true);
        Allowed(w, "192.168.1.1", "db", Tcp, 5432, false);
        Allowed(w, "10.1.1.1", "db", Tcp, 5432, false);
        Allowed(w, "192.168.2.1", "db", Tcp, 80, false);
    }

    [Fact]
    public void Overlapping_blocks_give_a_region_the_union_of_the_blocks_that_hold_it()
    {
        var w = World(Ingress("blocks", Sel("app=db"),
            new NetworkPolicyIngressRule { From = [new NetworkPolicyPeer { IPBlock = new IPBlock { Cidr = "10.0.0.0/8", Except = ["10.1.0.0/16"] } }], Ports = [P("80")] },
            new NetworkPolicyIngressRule { From = [new NetworkPolicyPeer { IPBlock = new IPBlock { Cidr = "10.1.2.0/24" } }], Ports = [P("443")] }));
        Allowed(w, "10.9.0.1", "db", Tcp, 80, true);
        Allowed(w, "10.1.0.1", "db", Tcp, 80, false);
        Allowed(w, "10.1.2.1", "db", Tcp, 443, true);
        Allowed(w, "10.1.2.1", "db", Tcp, 80, false);
        Allowed(w, "10.9.0.1", "db", Tcp, 443, false);
    }

    [Fact]
    public void An_ingress_named_port_resolves_on_the_pods_own_ports()
    {
        var w = World(Ingress("named", Sel("app=web"), new NetworkPolicyIngressRule { Ports = [P("http"), P("dns", Protocol.Udp), P("pg")] }));
        var policy = PolicyCompiler.Compile(w.Endpoint("web"), w.Input, Default);
        Assert.Equal([new PolicyRule(PolicyDirection.Ingress, 0, Tcp, 8080, 16), new PolicyRule(PolicyDirection.Ingress, 0, Udp, 53, 16)], policy.Rules);
        Allowed(w, "db", "web", Tcp, 8080, true);
        Allowed(w, "db", "web", Tcp, 80, false);
    }

    [Fact]
    public void An_egress_named_port_resolves_per_peer_and_never_on_an_outside_address()
    {
        var toWeb = new NetworkPolicy
        {
            Namespace = "a", Name = "out", PodSelector = Sel("app=db"),
            Egress = [new NetworkPolicyEgressRule { To = [new NetworkPolicyPeer { PodSelector = Sel("app=web"), NamespaceSelector = new LabelSelector() }], Ports = [P("http")] }],
        };
        var w = World(toWeb);
        Allowed(w, "db", "web", Tcp, 8080, true);
        Allowed(w, "db", "bweb", Tcp, 9090, true);
        Allowed(w, "db", "bweb", Tcp, 8080, false);
        Allowed(w, "db", "web", Tcp, 9090, false);
        var any = World(toWeb with { Egress = [new NetworkPolicyEgressRule { Ports = [P("http")] }] });
        Allowed(any, "db", "web", Tcp, 8080, true);
        Allowed(any, "db", "bweb", Tcp, 9090, true);
        Allowed(any, "db", "192.168.1.1", Tcp, 8080, false);
        Allowed(any, "db", "web", Tcp, 9090, false);
    }

    [Fact]
    public void Policy_types_default_to_ingress_plus_egress_when_there_is_an_egress_section()
    {
        var ingressOnly = World(Ingress("i", Sel("app=db")));
        var p = PolicyCompiler.Compile(ingressOnly.Endpoint("db"), ingressOnly.Input, Default);
        Assert.True(p.IngressEnforced);
        Assert.False(p.EgressEnforced);
        var both = World(Ingress("b", Sel("app=db")) with { Egress = [new NetworkPolicyEgressRule { Ports = [P("53", Protocol.Udp)] }] });
        p = PolicyCompiler.Compile(both.Endpoint("db"), both.Input, Default);
        Assert.True(p.IngressEnforced && p.EgressEnforced);
        Allowed(both, "db", "dns", Udp, 53, true);
        Allowed(both, "db", "web", Tcp, 8080, false);
        var egressOnly = World(Ingress("e", Sel("app=db")) with { PolicyTypes = [PolicyType.Egress], Ingress = [new NetworkPolicyIngressRule()] });
        p = PolicyCompiler.Compile(egressOnly.Endpoint("db"), egressOnly.Input, Default);
        Assert.False(p.IngressEnforced);
        Assert.True(p.EgressEnforced);
        Assert.Empty(p.Rules);
    }

    [Fact]
    public void A_policy_that_selects_no_pod_changes_nothing()
    {
        var w = World(Ingress("none", Sel("app=nothing")), Ingress("elsewhere", Sel("app=web")) with { Namespace = "b" });
        var p = PolicyCompiler.Compile(w.Endpoint("web"), w.Input, Default);
        Assert.False(p.IngressEnforced || p.EgressEnforced);
        Assert.Empty(p.Rules);
        Assert.Empty(p.IngressPolicies);
        Allowed(w, "db", "web", Tcp, 1, true);
    }

    [Fact]
    public void Several_policies_are_a_union()
    {
        var w = World(
            Ingress("http", Sel("app=web"), new NetworkPolicyIngressRule { From = [new NetworkPolicyPeer { PodSelector = Sel("app=db") }], Ports = [P("8080")] }),
            Ingress("dns", new LabelSelector(), new NetworkPolicyIngressRule { Ports = [P("53", Protocol.Udp)] }));
        var p = PolicyCompiler.Compile(w.Endpoint("web"), w.Input, Default);
        Assert.Equal(["a/http", "a/dns"], p.IngressPolicies);
        Allowed(w, "db", "web", Tcp, 8080, true);
        Allowed(w, "bweb", "web", Udp, 53, true);
        Allowed(w, "bweb", "web", Tcp, 8080, false);
    }

    [Fact]
    public void Identical_rules_are_one_entry_and_the_order_is_stable()
    {
        var rule = new NetworkPolicyIngressRule { From = [new NetworkPolicyPeer { PodSelector = Sel("app=web") }], Ports = [P("80"), P("80")] };
        var w = World(Ingress("one", Sel("app=db"), rule, rule), Ingress("two", Sel("app=db"), rule));
        var p = PolicyCompiler.Compile(w.Endpoint("db"), w.Input, Default);
        Assert.Single(p.Rules);
        Assert.Equal(p.Rules, PolicyCompiler.Compile(w.Endpoint("db"), w.Input, Default).Rules);
    }

    [Fact]
    public void Never_enforces_nothing_and_always_isolates_every_pod()
    {
        var w = World(Ingress("deny", Sel("app=db")));
        Assert.Same(EndpointPolicy.Open, PolicyCompiler.Compile(w.Endpoint("db"), w.Input, PolicyEnforcementMode.Never));
        Allowed(w, "web", "db", Tcp, 1, true, PolicyEnforcementMode.Never);
        Allowed(w, "web", "db", Tcp, 1, false);
        var always = PolicyCompiler.Compile(w.Endpoint("bweb"), w.Input, PolicyEnforcementMode.Always);
        Assert.True(always.IngressEnforced && always.EgressEnforced);
        Assert.Empty(always.Rules);
        Allowed(w, "bweb", "bother", Tcp, 80, false, PolicyEnforcementMode.Always);
        Allowed(w, "bweb", "bother", Tcp, 80, true);
    }

    [Fact]
    public void The_cluster_dns_is_matched_on_its_pods_labels_and_other_reserved_identities_never()
    {
        var toDns = new NetworkPolicy
        {
            Namespace = "a", Name = "dns", PodSelector = new LabelSelector(), PolicyTypes = [PolicyType.Egress],
            Egress = [new NetworkPolicyEgressRule { To = [new NetworkPolicyPeer { NamespaceSelector = Sel(ClusterNamespace.NameLabel + "=kube-system"), PodSelector = Sel("k8s-app=kube-dns") }] }],
        };
        var w = World(toDns);
        var p = PolicyCompiler.Compile(w.Endpoint("db"), w.Input, Default);
        Assert.Equal([new PolicyRule(PolicyDirection.Egress, ReservedIdentity.KubeDns, 0, 0, 0)], p.Rules);
        Allowed(w, "db", "dns", Udp, 53, true);

        // A host identity that somehow carried pod labels is still never a pod.
        var identities = new Dictionary<uint, SecurityLabels>(w.Input.Identities) { [ReservedIdentity.Host] = SecurityLabels.Of("a", L("app=web"), L()) };
        var input = new PolicyInput(w.Input.Policies, w.Input.Namespaces, identities, w.Input.Endpoints);
        var everyPod = new NetworkPolicyPeer { NamespaceSelector = new LabelSelector() };
        Assert.DoesNotContain(ReservedIdentity.Host, PolicyCompiler.Identities(input, everyPod, "a"));
        Assert.Contains(ReservedIdentity.KubeDns, PolicyCompiler.Identities(input, everyPod, "a"));
    }

    [Fact]
    public void A_rule_without_peers_is_any_peer_world_included()
    {
        var w = World(Ingress("any", Sel("app=db"), new NetworkPolicyIngressRule { Ports = [P("5432")] }));
        Assert.Equal([new PolicyRule(PolicyDirection.Ingress, ReservedIdentity.Unknown, Tcp, 5432, 16)], PolicyCompiler.Compile(w.Endpoint("db"), w.Input, Default).Rules);
        Allowed(w, "8.8.8.8", "db", Tcp, 5432, true);
        Assert.True(PolicyLookup.Allows(PolicyCompiler.Compile(w.Endpoint("db"), w.Input, Default), PolicyDirection.Ingress, ReservedIdentity.Host, IPAddress.Parse("10.0.0.254"), Tcp, 5432));
    }

    [Fact]
    public void An_invalid_policy_isolates_but_allows_nothing()
    {
        var w = World(Ingress("bad", Sel("app=db"), new NetworkPolicyIngressRule { Ports = [P("0")] }));
        Assert.Contains("a/bad", w.Input.Invalid.Keys);
        var p = PolicyCompiler.Compile(w.Endpoint("db"), w.Input, Default);
        Assert.True(p.IngressEnforced);
        Assert.Empty(p.Rules);
    }
}
