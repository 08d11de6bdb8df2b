using System.Globalization;
using System.Text.Json;
using CsCheck;
using Loom.Core.Model;
using Loom.Core.Policy;
using Loom.Core.Selection;
using Loom.Core.Validation;

namespace Loom.Core.Tests.Policy;

/// <summary>
/// The compiled policy, looked up as the datapath does, against the NetworkPolicy rules evaluated directly: random
/// namespaces, pods, policies and connections from small alphabets, so selectors, blocks and ports hit often.
/// </summary>
public sealed class PolicyPropertyTests
{
    private static readonly string[] Namespaces = ["a", "b", "kube-system"];
    private static readonly string[] Keys = ["app", "tier"];
    private static readonly string[] Values = ["x", "y"];
    private static readonly string[] Cidrs = ["10.0.0.0/24", "10.0.0.0/29", "10.0.0.4/30", "0.0.0.0/0", "10.0.0.2/32", "fd00::/64"];
    private static readonly string[] Excepts = ["10.0.0.0/30", "10.0.0.4/31", "10.0.0.6/32", "10.0.0.128/25", "10.0.0.2/32", "10.0.0.0/25", "fd00::1/128"];
    private static readonly string[] Externals = ["10.0.0.6", "10.0.0.200", "192.168.1.1", "fd00::1"];
    private static readonly ushort[] ProbePorts = [1, 53, 55, 80, 81, 8080, 65535];
    private static readonly byte[] ProbeProtocols = [6, 17, 1];

    private static readonly Gen<Dictionary<string, string>> LabelSet =
        Gen.Select(Gen.Int[0, Keys.Length - 1], Gen.Int[0, Values.Length - 1]).Array[0, 2]
            .Select(pairs => pairs.GroupBy(p => Keys[p.Item1]).ToDictionary(g => g.Key, g => Values[g.Last().Item2], StringComparer.Ordinal));

    private static readonly Gen<LabelSelectorRequirement> Requirement =
        Gen.Select(Gen.Int[0, Keys.Length - 1], Gen.Int[0, 3], Gen.Int[0, Values.Length - 1].Array[1, 2])
            .Select(t => new LabelSelectorRequirement(Keys[t.Item1], (SelectorOperator)t.Item2,
                t.Item2 < 2 ? [.. t.Item3.Select(i => Values[i]).Distinct()] : []));

    private static readonly Gen<LabelSelector> PodSelector =
        Gen.Select(LabelSet, Requirement.Array[0, 1]).Select(t => new LabelSelector { MatchLabels = t.Item1, MatchExpressions = t.Item2 });

    private static readonly LabelSelector[] NamespaceSelectors =
    [
        new(),
        new() { MatchLabels = new Dictionary<string, string> { ["team"] = "x" } },
        new() { MatchLabels = new Dictionary<string, string> { [ClusterNamespace.NameLabel] = "a" } },
        new() { MatchExpressions = [new LabelSelectorRequirement("team", SelectorOperator.DoesNotExist, [])] },
        new() { MatchExpressions = [new LabelSelectorRequirement(ClusterNamespace.NameLabel, SelectorOperator.NotIn, ["a"])] },
    ];

    private static readonly Gen<NetworkPolicyPeer> Peer =
        Gen.Select(Gen.Int[0, 3], PodSelector, Gen.Int[0, NamespaceSelectors.Length - 1], Gen.Int[0, Cidrs.Length - 1], Gen.Int[0, Excepts.Length - 1].Array[0, 2])
            .Select(t => t.Item1 switch
            {
                0 => new NetworkPolicyPeer { PodSelector = t.Item2 },
                1 => new NetworkPolicyPeer { NamespaceSelector = NamespaceSelectors[t.Item3] },
                2 => new NetworkPolicyPeer { PodSelector = t.Item2, NamespaceSelector = NamespaceSelectors[t.Item3] },
                _ => new NetworkPolicyPeer { IPBlock = Block(Cidrs[t.Item4], [.. t.Item5.Select(i => Excepts[i])]) },
            });

    private static readonly Gen<NetworkPolicyPort> Port =
        Gen.Select(Gen.Bool, Gen.Int[0, 7]).Select(t =>
        {
            var protocol = t.Item1 ? Protocol.Tcp : Protocol.Udp;
            return t.Item2 switch
            {
                0 => new NetworkPolicyPort { Protocol = protocol },
                1 => new NetworkPolicyPort { Protocol = protocol, Port = "80" },
                2 => new NetworkPolicyPort { Protocol = protocol, Port = "53" },
                3 => new NetworkPolicyPort { Protocol = protocol, Port = "80", EndPort = 8080 },
                4 => new NetworkPolicyPort { Protocol = Protocol.Tcp, Port = "http" },
                5 => new NetworkPolicyPort { Protocol = Protocol.Udp, Port = "dns" },
                6 => new NetworkPolicyPort { Protocol = protocol, Port = "1", EndPort = 65535 },
                _ => new NetworkPolicyPort { Protocol = protocol, Port = "50", EndPort = 60 },
            };
        });

    private static readonly Gen<(IReadOnlyList<NetworkPolicyPeer> Peers, IReadOnlyList<NetworkPolicyPort> Ports)> RuleParts =
        Gen.Select(Peer.Array[0, 2], Port.Array[0, 2]).Select(t => ((IReadOnlyList<NetworkPolicyPeer>)t.Item1, (IReadOnlyList<NetworkPolicyPort>)t.Item2));

    private static readonly Gen<NetworkPolicy> Policy =
        Gen.Select(Gen.Int[0, Namespaces.Length - 1], PodSelector, Gen.Int[0, 3], RuleParts.Array[0, 2], RuleParts.Array[0, 2], Gen.Int[0, 999])
            .Select(t => new NetworkPolicy
            {
                Namespace = Namespaces[t.Item1],
                Name = "p" + t.Item6.ToString(CultureInfo.InvariantCulture),
                PodSelector = t.Item2,
                PolicyTypes = t.Item3 switch
                {
                    0 => null,
                    1 => [PolicyType.Ingress],
                    2 => [PolicyType.Egress],
                    _ => [PolicyType.Ingress, PolicyType.Egress],
                },
                Ingress = [.. t.Item4.Select(r => new NetworkPolicyIngressRule { From = r.Peers, Ports = r.Ports })],
                Egress = [.. t.Item5.Select(r => new NetworkPolicyEgressRule { To = r.Peers, Ports = EgressPorts(r.Peers, r.Ports) })],
            });

    private static readonly Gen<(int Ns, Dictionary<string, string> Labels, bool Dns)> Pod =
        Gen.Select(Gen.Int[0, Namespaces.Length - 1], LabelSet, Gen.Bool);

    private static readonly Gen<PolicyWorld> World =
        Gen.Select(Policy.Array[0, 4], Gen.Int[0, 2].Array[2], Pod.Array[1, 5]).Select(t => new PolicyWorld(
            t.Item1.DistinctBy(p => p.Key),
            [.. t.Item2.Select((team, i) => (team, i)).Where(x => x.team > 0)
                .Select(x => new ClusterNamespace { Name = Namespaces[x.i], Labels = new Dictionary<string, string> { ["team"] = x.team == 1 ? "x" : "y" } })],
            t.Item3.Select((pod, i) => PodOf(pod, i))));

    private static readonly Gen<(int Src, int Dst, byte Protocol, ushort Port)> Probe =
        Gen.Select(Gen.Int[0, 8], Gen.Int[0, 8], Gen.Int[0, ProbeProtocols.Length - 1], Gen.Int[0, ProbePorts.Length - 1])
            .Select(t => (t.Item1, t.Item2, ProbeProtocols[t.Item3], ProbePorts[t.Item4]));

    [Theory]
    [InlineData(PolicyEnforcementMode.Default)]
    [InlineData(PolicyEnforcementMode.Always)]
    [InlineData(PolicyEnforcementMode.Never)]
    public void Compiled_and_looked_up_agrees_with_the_policies_evaluated_directly(PolicyEnforcementMode mode)
    {
        Gen.Select(World, Probe.Array[1, 12]).Sample((world, probes) =>
        {
            foreach (var p in world.Input.Policies)
            {
                Assert.Empty(PolicyValidation.Validate(p));
            }

            var names = world.Input.Endpoints.Select(e => e.Name).Concat(Externals).ToList();
            foreach (var (s, d, protocol, port) in probes)
            {
                var src = names[s % names.Count];
                var dst = names[d % names.Count];
                var direct = world.Direct(src, dst, protocol, port, mode);
                var compiled = world.Compiled(src, dst, protocol, port, mode);
                Assert.True(direct == compiled,
                    $"{src} -> {dst} proto {protocol} port {port} ({mode}): direct {direct}, compiled {compiled}\n{world.Describe()}\n"
                    + string.Join("\n", world.Input.Policies.Select(p => JsonSerializer.Serialize(p, LoomJsonContext.Default.NetworkPolicy))));
            }
        }, iter: 1500);
    }

    private static IPBlock Block(string cidr, string[] excepts)
    {
        Assert.True(PolicyCidrText.TryParse(cidr, out var outer));
        return new IPBlock
        {
            Cidr = cidr,
            Except = [.. excepts.Distinct().Where(e => PolicyCidrText.TryParse(e, out var inner) && PolicyCidrText.Within(inner, outer) && inner.PrefixLength > outer.PrefixLength)],
        };
    }

    // Egress named ports resolve on pods only; the compiler gives an ipBlock's named ports nothing even where the block
    // holds a pod's address (a known difference), so rules with a block use numbers only.
    private static IReadOnlyList<NetworkPolicyPort> EgressPorts(IReadOnlyList<NetworkPolicyPeer> peers, IReadOnlyList<NetworkPolicyPort> ports) =>
        peers.Any(p => p.IPBlock is not null) ? [.. ports.Where(p => p.Port is null || PolicyPortText.TryNumber(p.Port, out _))] : ports;

    private static (string, string, IReadOnlyDictionary<string, string>, string, IReadOnlyList<ContainerPort>) PodOf((int Ns, Dictionary<string, string> Labels, bool Dns) pod, int i)
    {
        var ns = Namespaces[pod.Ns];
        IReadOnlyDictionary<string, string> labels = ns == "kube-system" && pod.Dns ? new Dictionary<string, string> { ["k8s-app"] = "kube-dns" } : pod.Labels;

        // Ports follow the labels, as pods of one template (one identity) share them.
        var ports = new List<ContainerPort> { new("dns", 53, Protocol.Udp) };
        if (labels.GetValueOrDefault("app") != "y")
        {
            ports.Add(new ContainerPort("http", labels.GetValueOrDefault("tier") == "x" ? 8080 : 80, Protocol.Tcp));
        }

        return ("pod" + i.ToString(CultureInfo.InvariantCulture), ns, labels, "10.0.0." + (i + 1).ToString(CultureInfo.InvariantCulture), ports);
    }
}
