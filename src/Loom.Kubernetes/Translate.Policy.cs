using k8s.Models;
using Loom.Core.Model;
using Loom.Core.Selection;
using Loom.Core.Validation;
using NetworkPolicy = Loom.Core.Model.NetworkPolicy;

namespace Loom.Kubernetes;

internal static partial class Translate
{
    /// <summary>
    /// A networking.k8s.io/v1 NetworkPolicy, field for field; one whose selectors do not validate, or with an SCTP
    /// port, is skipped whole (a partial policy could allow what the whole one denies).
    /// </summary>
    public static NetworkPolicy? Policy(V1NetworkPolicy p, out string? skipped)
    {
        skipped = null;
        var errors = new List<FieldError>();
        var spec = p.Spec ?? new V1NetworkPolicySpec();
        var podSelector = Selector(spec.PodSelector, "spec.podSelector", errors) ?? new LabelSelector();
        var types = spec.PolicyTypes?.Select(t => t switch
        {
            "Ingress" => PolicyType.Ingress,
            "Egress" => PolicyType.Egress,
            _ => (PolicyType?)null,
        }).ToList();
        if (types?.Any(t => t is null) == true)
        {
            errors.Add(FieldError.Invalid("spec.policyTypes", string.Join(",", spec.PolicyTypes!), "must be Ingress or Egress"));
        }

        var ingress = (spec.Ingress ?? []).Select((r, i) => new NetworkPolicyIngressRule
        {
            From = Peers(r.FromProperty, $"spec.ingress[{i}].from", errors),
            Ports = Ports(r.Ports, $"spec.ingress[{i}].ports", errors),
        }).ToList();
        var egress = (spec.Egress ?? []).Select((r, i) => new NetworkPolicyEgressRule
        {
            To = Peers(r.To, $"spec.egress[{i}].to", errors),
            Ports = Ports(r.Ports, $"spec.egress[{i}].ports", errors),
        }).ToList();
        if (errors.Count > 0)
        {
            skipped = string.Join("; ", errors);
            return null;
        }

        return new NetworkPolicy
        {
            Namespace = p.Metadata!.NamespaceProperty ?? "default",
            Name = p.Metadata.Name,
            PodSelector = podSelector,
            PolicyTypes = types?.Select(t => t!.Value).ToList(),
            Ingress = ingress,
            Egress = egress,
        };
    }

    private static List<NetworkPolicyPeer> Peers(IList<V1NetworkPolicyPeer>? peers, string field, List<FieldError> errors) =>
        [.. (peers ?? []).Select((peer, i) => new NetworkPolicyPeer
        {
            PodSelector = Selector(peer.PodSelector, $"{field}[{i}].podSelector", errors),
            NamespaceSelector = Selector(peer.NamespaceSelector, $"{field}[{i}].namespaceSelector", errors),
            IPBlock = peer.IpBlock is { } b ? new IPBlock { Cidr = b.Cidr, Except = [.. b.Except ?? []] } : null,
        })];

    private static List<NetworkPolicyPort> Ports(IList<V1NetworkPolicyPort>? ports, string field, List<FieldError> errors)
    {
        var result = new List<NetworkPolicyPort>();
        foreach (var (port, i) in (ports ?? []).Select((x, i) => (x, i)))
        {
            if (Protocol(port.Protocol) is not { } proto)
            {
                errors.Add(FieldError.Invalid($"{field}[{i}].protocol", port.Protocol ?? "", "SCTP is not supported"));
                continue;
            }

            result.Add(new NetworkPolicyPort { Protocol = proto, Port = port.Port?.Value, EndPort = port.EndPort });
        }

        return result;
    }
}
