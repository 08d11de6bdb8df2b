using Loom.Core.Model;

namespace Loom.Core.Policy;

/// <summary>
/// NetworkPolicy evaluated straight from the objects, as the Kubernetes documentation states it, for one connection:
/// allowed when the source's egress and the destination's ingress both allow it. Written apart from
/// <see cref="PolicyCompiler"/> (it shares nothing with it but label and CIDR parsing) so each checks the other.
/// </summary>
public static class PolicySemantics
{
    public static bool Allowed(PolicyInput input, TrafficPeer source, TrafficPeer destination, byte protocol, ushort port, PolicyEnforcementMode mode)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        return (!source.IsPod || Side(input, source, destination, PolicyType.Egress, destination, protocol, port, mode))
            && (!destination.IsPod || Side(input, destination, source, PolicyType.Ingress, destination, protocol, port, mode));
    }

    /// <summary>Whether <paramref name="pod"/>'s policies for <paramref name="type"/> let it talk with <paramref name="peer"/>.</summary>
    private static bool Side(PolicyInput input, TrafficPeer pod, TrafficPeer peer, PolicyType type, TrafficPeer destination, byte protocol, ushort port,
        PolicyEnforcementMode mode)
    {
        if (mode == PolicyEnforcementMode.Never)
        {
            return true;
        }

        var selecting = input.Policies.Where(p => p.Namespace == pod.Namespace && p.PodSelector.Matches(pod.Labels) && p.EffectivePolicyTypes.Contains(type)).ToList();
        if (selecting.Count == 0)
        {
            return mode != PolicyEnforcementMode.Always;
        }

        foreach (var policy in selecting)
        {
            var rules = type == PolicyType.Ingress
                ? policy.Ingress.Select(r => (Peers: r.From, r.Ports))
                : policy.Egress.Select(r => (Peers: r.To, r.Ports));
            if (rules.Any(r => (r.Peers.Count == 0 || r.Peers.Any(p => PeerMatches(input, policy.Namespace, p, peer)))
                && (r.Ports.Count == 0 || r.Ports.Any(p => PortMatches(p, destination, protocol, port)))))
            {
                return true;
            }
        }

        return false;
    }

    private static bool PeerMatches(PolicyInput input, string policyNamespace, NetworkPolicyPeer peer, TrafficPeer other)
    {
        if (peer.IPBlock is { } block)
        {
            return In(block.Cidr, other) && !block.Except.Any(e => In(e, other));
        }

        if (!other.IsPod)
        {
            return false;
        }

        var namespaceOk = peer.NamespaceSelector is null
            ? other.Namespace == policyNamespace
            : peer.NamespaceSelector.Matches(input.NamespaceLabels(other.Namespace!));
        return namespaceOk && (peer.PodSelector is null || peer.PodSelector.Matches(other.Labels));
    }

    private static bool In(string cidr, TrafficPeer peer) =>
        PolicyCidrText.TryParse(cidr, out var network) && network.BaseAddress.AddressFamily == peer.Ip.AddressFamily && network.Contains(peer.Ip);

    /// <summary>A port is the destination's: a name resolves on the destination pod (an address outside the pods has no names).</summary>
    private static bool PortMatches(NetworkPolicyPort p, TrafficPeer destination, byte protocol, ushort port)
    {
        var number = p.Protocol == Protocol.Tcp ? 6 : 17;
        if (number != protocol)
        {
            return false;
        }

        if (p.Port is null)
        {
            return true;
        }

        if (PolicyPortText.TryNumber(p.Port, out var first))
        {
            return port >= first && port <= (p.EndPort ?? first);
        }

        return destination.Ports.Any(c => c.Name == p.Port && c.Protocol == p.Protocol && c.Port == port);
    }
}
