using System.Net;
using Loom.Core.Model;
using Loom.Core.Selection;

namespace Loom.Core.Policy;

/// <summary>
/// Compiles the NetworkPolicies that select one endpoint into its policy-map entries, with Kubernetes' semantics: the
/// policies selecting it for a direction are a union of allow rules; a direction is isolated once one selects it
/// (<see cref="PolicyEnforcementMode.Default"/>), always (<see cref="PolicyEnforcementMode.Always"/>) or never.
/// Selector peers become the identities whose labels they match; ipBlocks become <see cref="CidrRegions"/>. Pure:
/// the same input gives the same entries in the same order. A policy that fails validation isolates but allows nothing.
/// </summary>
public static class PolicyCompiler
{
    public static EndpointPolicy Compile(PolicyEndpoint endpoint, PolicyInput input, PolicyEnforcementMode mode)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(input);
        if (mode == PolicyEnforcementMode.Never)
        {
            return EndpointPolicy.Open;
        }

        var ingress = input.SelectingPolicies(endpoint, PolicyDirection.Ingress);
        var egress = input.SelectingPolicies(endpoint, PolicyDirection.Egress);
        var rules = new HashSet<PolicyRule>();
        var cidrs = new List<PolicyCidr>();
        var nextCidr = ReservedIdentity.CidrBase;
        foreach (var (direction, policies) in new[] { (PolicyDirection.Ingress, ingress), (PolicyDirection.Egress, egress) })
        {
            var blocks = new List<(IPNetwork, IReadOnlyList<IPNetwork>, IReadOnlyList<(byte, ushort, byte)>)>();
            foreach (var policy in policies.Where(p => !input.Invalid.ContainsKey(p.Key)))
            {
                var sections = direction == PolicyDirection.Ingress
                    ? policy.Ingress.Select(r => (Peers: r.From, r.Ports))
                    : policy.Egress.Select(r => (Peers: r.To, r.Ports));
                foreach (var (peers, ports) in sections)
                {
                    Rule(endpoint, input, direction, policy.Namespace, peers, ports, rules, blocks);
                }
            }

            // A region allowed nothing (an except) still gets its entry: without it the longest-prefix match would
            // fall back to the enclosing cidr's region and allow what the except forbids.
            foreach (var (prefix, allowed) in CidrRegions.Split(blocks))
            {
                cidrs.Add(new PolicyCidr(direction, prefix, nextCidr));
                rules.UnionWith(allowed.Select(a => new PolicyRule(direction, nextCidr, a.Item1, a.Item2, a.Item3)));
                nextCidr++;
            }
        }

        return new EndpointPolicy
        {
            IngressEnforced = mode == PolicyEnforcementMode.Always || ingress.Count > 0,
            EgressEnforced = mode == PolicyEnforcementMode.Always || egress.Count > 0,
            Rules = [.. rules.OrderBy(r => r.Direction).ThenBy(r => r.Identity).ThenBy(r => r.Protocol).ThenBy(r => r.Port).ThenBy(r => r.PortPrefixBits)],
            Cidrs = cidrs,
            IngressPolicies = [.. ingress.Select(p => p.Key)],
            EgressPolicies = [.. egress.Select(p => p.Key)],
        };
    }

    /// <summary>
    /// The identities a selector peer of a policy in <paramref name="policyNamespace"/> stands for. Reserved identities
    /// are never pods, except the cluster DNS's, matched on the labels its pods have.
    /// </summary>
    public static IEnumerable<uint> Identities(PolicyInput input, NetworkPolicyPeer peer, string policyNamespace)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(peer);
        foreach (var (id, labels) in input.Identities)
        {
            if ((id < ReservedIdentity.MinAllocated && id != ReservedIdentity.KubeDns) || labels.Namespace is not { } ns)
            {
                continue;
            }

            var inNamespace = peer.NamespaceSelector is { } nsSelector ? nsSelector.Matches(labels.NamespaceLabels) : ns == policyNamespace;
            if (inNamespace && (peer.PodSelector ?? LabelSelector.Everything).Matches(labels.PodLabels))
            {
                yield return id;
            }
        }
    }

    private static void Rule(PolicyEndpoint endpoint, PolicyInput input, PolicyDirection direction, string policyNamespace,
        IReadOnlyList<NetworkPolicyPeer> peers, IReadOnlyList<NetworkPolicyPort> ports, HashSet<PolicyRule> rules,
        List<(IPNetwork, IReadOnlyList<IPNetwork>, IReadOnlyList<(byte, ushort, byte)>)> blocks)
    {
        // Ingress named ports are this pod's own; egress ones the peer's, so they differ per peer identity.
        var own = PolicyPorts.Entries(ports, (name, protocol) => PolicyPorts.Resolve(endpoint.Ports, name, protocol)).ToList();
        var perPeer = direction == PolicyDirection.Egress && PolicyPorts.HasNamed(ports);
        IReadOnlyList<(byte, ushort, byte)> For(uint identity) => !perPeer ? own : [.. PolicyPorts.Entries(ports,
            (name, protocol) => input.EndpointsOf(identity).SelectMany(e => PolicyPorts.Resolve(e.Ports, name, protocol)))];

        // Named ports never resolve on an address outside the cluster's pods.
        IReadOnlyList<(byte, ushort, byte)> unnamed = perPeer ? [.. PolicyPorts.Entries(ports, (_, _) => [])] : own;
        if (peers.Count == 0)
        {
            Add(rules, direction, ReservedIdentity.Unknown, unnamed);
            if (perPeer)
            {
                foreach (var id in input.Identities.Keys.Where(id => input.EndpointsOf(id).Count > 0))
                {
                    Add(rules, direction, id, For(id));
                }
            }

            return;
        }

        foreach (var peer in peers)
        {
            if (peer.IPBlock is { } block)
            {
                if (PolicyCidrText.TryParse(block.Cidr, out var cidr))
                {
                    var except = block.Except.Select(e => PolicyCidrText.TryParse(e, out var x) ? x : (IPNetwork?)null).OfType<IPNetwork>().ToList();
                    blocks.Add((cidr, except, unnamed));
                }

                continue;
            }

            foreach (var id in Identities(input, peer, policyNamespace))
            {
                Add(rules, direction, id, For(id));
            }
        }
    }

    private static void Add(HashSet<PolicyRule> rules, PolicyDirection direction, uint identity, IEnumerable<(byte Protocol, ushort Port, byte Bits)> entries) =>
        rules.UnionWith(entries.Select(e => new PolicyRule(direction, identity, e.Protocol, e.Port, e.Bits)));
}
