using Loom.Core.Model;
using Loom.Core.Selection;

namespace Loom.Lab.Tests;

/// <summary>NetworkPolicy, Namespace and multi-container Pod manifests: every field read into the model, a bad shape an error naming it.</summary>
public sealed class NetworkPolicyManifestTests
{
    private const string Policy = """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: allow-x
          namespace: y
        spec:
          podSelector:
            matchLabels:
              pod: a
            matchExpressions:
            - key: tier
              operator: In
              values: [web, api]
          policyTypes: [Ingress, Egress]
          ingress:
          - from:
            - namespaceSelector:
                matchLabels:
                  ns: x
              podSelector:
                matchExpressions:
                - key: pod
                  operator: Exists
            - ipBlock:
                cidr: 10.244.0.0/16
                except: [10.244.1.0/24, 10.244.2.0/24]
            ports:
            - protocol: UDP
              port: 81
            - port: serve-80-tcp
            - port: 30000
              endPort: 30100
          egress:
          - to:
            - podSelector: {}
          - ports:
            - protocol: TCP

        """;

    private static NetworkPolicy Parsed(string yaml)
    {
        var set = Manifests.Parse(yaml);
        Assert.Empty(set.Errors);
        return Assert.IsType<NetworkPolicyManifest>(Assert.Single(set.Objects)).Policy;
    }

    private static IReadOnlyList<string> Errors(string from, string to)
    {
        Assert.Contains(from, Policy, StringComparison.Ordinal);
        return Manifests.Parse(Policy.Replace(from, to, StringComparison.Ordinal)).Errors;
    }

    [Fact]
    public void Every_field_of_a_policy_is_read_into_the_model()
    {
        var set = Manifests.Parse(Policy);
        Assert.Empty(set.Warnings);
        var p = Parsed(Policy);
        Assert.Equal(("y", "allow-x", "y/allow-x"), (p.Namespace, p.Name, p.Key));
        Assert.Equal("a", p.PodSelector.MatchLabels["pod"]);
        var tier = Assert.Single(p.PodSelector.MatchExpressions);
        Assert.Equal(("tier", SelectorOperator.In), (tier.Key, tier.Operator));
        Assert.Equal(["web", "api"], tier.Values);
        Assert.Equal([PolicyType.Ingress, PolicyType.Egress], p.PolicyTypes);

        var rule = Assert.Single(p.Ingress);
        Assert.Equal(2, rule.From.Count);
        Assert.Equal("x", rule.From[0].NamespaceSelector!.MatchLabels["ns"]);
        Assert.Equal(SelectorOperator.Exists, Assert.Single(rule.From[0].PodSelector!.MatchExpressions).Operator);
        Assert.Null(rule.From[0].IPBlock);
        Assert.Equal("10.244.0.0/16", rule.From[1].IPBlock!.Cidr);
        Assert.Equal(["10.244.1.0/24", "10.244.2.0/24"], rule.From[1].IPBlock!.Except);
        Assert.Null(rule.From[1].PodSelector);
        Assert.Null(rule.From[1].NamespaceSelector);
        Assert.Equal(
            [new NetworkPolicyPort { Protocol = Protocol.Udp, Port = "81" }, new NetworkPolicyPort { Port = "serve-80-tcp" }, new NetworkPolicyPort { Port = "30000", EndPort = 30100 }],
            rule.Ports);

        Assert.Equal(2, p.Egress.Count);
        Assert.True(Assert.Single(p.Egress[0].To).PodSelector!.IsEmpty);
        Assert.Empty(p.Egress[0].Ports);
        Assert.Empty(p.Egress[1].To);
        Assert.Equal([new NetworkPolicyPort { Protocol = Protocol.Tcp, Port = null }], p.Egress[1].Ports);
    }

    [Fact]
    public void Absent_policy_types_stay_null_and_an_absent_spec_selects_every_pod()
    {
        var p = Parsed(Policy.Replace("  policyTypes: [Ingress, Egress]\n", "", StringComparison.Ordinal));
        Assert.Null(p.PolicyTypes);
        Assert.Equal([PolicyType.Ingress, PolicyType.Egress], p.EffectivePolicyTypes);

        var bare = Parsed("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: deny\nspec:\n  podSelector: {}\n");
        Assert.Equal("default", bare.Namespace);
        Assert.True(bare.PodSelector.IsEmpty);
        Assert.Null(bare.PolicyTypes);
        Assert.Empty(bare.Ingress);
        Assert.Equal([PolicyType.Ingress], bare.EffectivePolicyTypes);
    }

    [Fact]
    public void A_quoted_number_is_a_port_name_and_refused_as_one()
    {
        var errors = Errors("    - port: serve-80-tcp\n", "    - port: \"80\"\n");
        Assert.Contains(errors, e => e.Contains("NetworkPolicy/allow-x: spec.ingress[0].ports[1].port: Invalid value: \"80\": must contain at least one letter", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("      operator: In\n", "      operator: Like\n",
        "NetworkPolicy/allow-x: spec.podSelector.matchExpressions[0].operator: Unsupported value: \"Like\"")]
    [InlineData("          operator: Exists\n", "          operator: Sometimes\n",
        "NetworkPolicy/allow-x: spec.ingress[0].from[0].podSelector.matchExpressions[0].operator: Unsupported value: \"Sometimes\"")]
    [InlineData("      port: 81\n", "      port: [81]\n", "NetworkPolicy/allow-x: spec.ingress[0].ports[0].port: Invalid value: must be an integer or a string")]
    [InlineData("      port: 81\n", "      port: {number: 81}\n", "NetworkPolicy/allow-x: spec.ingress[0].ports[0].port: Invalid value: must be an integer or a string")]
    [InlineData("      port: 81\n", "      port: 70000\n", "spec.ingress[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive")]
    [InlineData("    - protocol: UDP\n", "    - protocol: ICMP\n", "spec.ingress[0].ports[0].protocol: Unsupported value: \"ICMP\"")]
    [InlineData("      endPort: 30100\n", "      endPort: many\n", "spec.ingress[0].ports[2].endPort: Invalid value: \"many\": must be an integer")]
    [InlineData("  policyTypes: [Ingress, Egress]\n", "  policyTypes: [Ingress, Sideways]\n", "spec.policyTypes[1]: Unsupported value: \"Sideways\"")]
    [InlineData("        cidr: 10.244.0.0/16\n", "        cidr: 10.244.0.0/33\n", "spec.ingress[0].from[1].ipBlock.cidr: Invalid value: \"10.244.0.0/33\"")]
    [InlineData("        except: [10.244.1.0/24, 10.244.2.0/24]\n", "        except: [nowhere]\n", "spec.ingress[0].from[1].ipBlock.except[0]: Invalid value: \"nowhere\"")]
    [InlineData("        cidr: 10.244.0.0/16\n", "", "spec.ingress[0].from[1].ipBlock.cidr: Required value")]
    [InlineData("  - to:\n    - podSelector: {}\n", "  - to: everyone\n", "spec.egress[0].to: must be a list")]
    [InlineData("apiVersion: networking.k8s.io/v1\n", "apiVersion: extensions/v1beta1\n", "apiVersion: Unsupported value: \"extensions/v1beta1\"")]
    public void A_bad_shape_is_refused_naming_the_field(string from, string to, string expected) =>
        Assert.Contains(Errors(from, to), e => e.Contains(expected, StringComparison.Ordinal));

    [Fact]
    public void A_namespace_carries_its_labels()
    {
        var set = Manifests.Parse("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n  labels:\n    ns: x\n");
        Assert.Empty(set.Errors);
        var ns = Assert.IsType<NamespaceManifest>(Assert.Single(set.Objects));
        Assert.Equal(("x", "x", "namespace/x"), (ns.Name, ns.Labels["ns"], ns.Display));
        Assert.Contains(Manifests.Parse("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: X_1\n").Errors,
            e => e.StartsWith("Namespace/X_1: metadata.name: Invalid value: \"X_1\"", StringComparison.Ordinal));
    }

    private const string TwoContainers = """
        apiVersion: v1
        kind: Pod
        metadata:
          name: a
          namespace: x
          labels:
            pod: a
        spec:
          containers:
          - name: cont-80-tcp
            image: registry.k8s.io/e2e-test-images/agnhost:2.53
            command: ["/agnhost", "serve-hostname", "--tcp", "--http=false", "--port", "80"]
            ports:
            - containerPort: 80
              name: serve-80-tcp
              protocol: TCP
          - name: cont-81-udp
            image: registry.k8s.io/e2e-test-images/agnhost:2.53
            command: ["/agnhost", "serve-hostname", "--udp", "--http=false", "--port", "81"]
            securityContext: {}
            ports:
            - containerPort: 81
              name: serve-81-udp
              protocol: UDP

        """;

    [Fact]
    public void Every_container_runs_with_its_ports()
    {
        var set = Manifests.Parse(TwoContainers);
        Assert.Empty(set.Errors);
        Assert.Empty(set.Warnings);
        var pod = Assert.IsType<PodManifest>(Assert.Single(set.Objects));
        Assert.Equal(("x", "a"), (pod.Namespace, pod.Name));
        Assert.Equal(["cont-80-tcp", "cont-81-udp"], pod.Spec.AllContainers.Select(c => c.Name));
        Assert.Equal([new ContainerPort("serve-80-tcp", 80, Protocol.Tcp)], pod.Spec.Containers[0].Ports);
        Assert.Equal([new ContainerPort("serve-81-udp", 81, Protocol.Udp)], pod.Spec.Containers[1].Ports);
        Assert.Equal(LabImages.Kind.Agnhost, LabImages.Classify(pod.Spec.Image, pod.Spec.Command, pod.Spec.Args));
    }

    [Theory]
    [InlineData("  - name: cont-81-udp\n", "  - name: cont-80-tcp\n", "spec.containers[1].name: Duplicate value: \"cont-80-tcp\"")]
    [InlineData("      name: serve-81-udp\n", "      name: serve-80-tcp\n", "spec.containers[1].ports[0].name: Duplicate value: \"serve-80-tcp\"")]
    [InlineData("      name: serve-81-udp\n", "      name: serve_81\n", "spec.containers[1].ports[0].name: Invalid value: \"serve_81\"")]
    [InlineData("    - containerPort: 81\n", "    - containerPort: 0\n", "spec.containers[1].ports[0].containerPort: Invalid value: 0: must be between 1 and 65535")]
    [InlineData("      protocol: UDP\n", "      protocol: SCTP\n", "spec.containers[1].ports[0].protocol: Unsupported value: \"SCTP\"")]
    [InlineData("\"--udp\", \"--http=false\"", "\"--udp\", \"--htp=false\"", "spec.containers[1].command: Invalid value: agnhost serve-hostname: unknown flag: --htp=false")]
    [InlineData("[\"/agnhost\", \"serve-hostname\", \"--udp\"", "[\"/agnhost\", \"netexec\", \"--udp\"", "spec.containers[1].image: Unsupported value")]
    public void Bad_containers_are_refused_naming_the_field(string from, string to, string expected)
    {
        Assert.Contains(from, TwoContainers, StringComparison.Ordinal);
        var errors = Manifests.Parse(TwoContainers.Replace(from, to, StringComparison.Ordinal)).Errors;
        Assert.Contains(errors, e => e.Contains("Pod/a: " + expected, StringComparison.Ordinal));
    }
}
