using System.Globalization;
using Loom.Core.Model;
using Loom.Core.Policy;
using Loom.Core.Selection;

namespace Loom.Core.Validation;

/// <summary>
/// NetworkPolicies and Namespaces as the API server validates them (ValidateNetworkPolicy, ValidateNamespace), plus
/// Loom's one restriction: its datapath carries TCP and UDP, so SCTP is refused. Field paths are kubectl's
/// (<c>spec.ingress[0].from[1].ipBlock.except[0]</c>); nothing that fails here may reach the store.
/// </summary>
public static class PolicyValidation
{
    private const string Protocols = "supported values: \"TCP\", \"UDP\" (Loom's datapath carries TCP and UDP; SCTP is not supported)";

    public static IReadOnlyList<FieldError> Validate(NetworkPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        var errors = new List<FieldError>();
        ObjectValidation.Namespace(errors, policy.Namespace);
        ObjectValidation.SubdomainName(errors, policy.Name);
        Selector(errors, policy.PodSelector, "spec.podSelector");
        var types = policy.PolicyTypes ?? [];
        for (var i = 0; i < types.Count; i++)
        {
            if (!Enum.IsDefined(types[i]))
            {
                errors.Add(FieldError.NotSupported(At("spec.policyTypes", i), types[i].ToString(), "supported values: \"Egress\", \"Ingress\""));
            }
        }

        if (types.Count > 2)
        {
            errors.Add(FieldError.Invalid("spec.policyTypes", string.Join(",", types), "may not specify more than two policyTypes"));
        }

        for (var i = 0; i < policy.Ingress.Count; i++)
        {
            Rule(errors, policy.Ingress[i].Ports, policy.Ingress[i].From, At("spec.ingress", i), "from");
        }

        for (var i = 0; i < policy.Egress.Count; i++)
        {
            Rule(errors, policy.Egress[i].Ports, policy.Egress[i].To, At("spec.egress", i), "to");
        }

        return errors;
    }

    public static IReadOnlyList<FieldError> Validate(ClusterNamespace ns)
    {
        ArgumentNullException.ThrowIfNull(ns);
        var errors = new List<FieldError>();
        ObjectValidation.Namespace(errors, ns.Name, "metadata.name");
        ObjectValidation.Labels(errors, ns.Labels, "metadata.labels");
        return errors;
    }

    /// <summary>A selector already in model form, checked as <see cref="LabelSelector.Create"/> checks the API shape.</summary>
    public static void Selector(List<FieldError> errors, LabelSelector? selector, string field)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (selector is not null)
        {
            LabelSelector.Create(selector.MatchLabels, [.. selector.MatchExpressions.Select(e => (e.Key, Operator(e.Operator), e.Values))], field, errors);
        }
    }

    /// <summary>A port's protocol as the manifest writes it: "TCP" (also when absent) or "UDP"; SCTP is refused by name.</summary>
    public static Protocol? Protocol(List<FieldError> errors, string? text, string field)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (text == "SCTP")
        {
            errors.Add(FieldError.NotSupported(field, text, Protocols));
            return null;
        }

        return ServiceValidation.Protocol(errors, text, field);
    }

    public static void Port(List<FieldError> errors, NetworkPolicyPort port, string field)
    {
        ArgumentNullException.ThrowIfNull(errors);
        ArgumentNullException.ThrowIfNull(port);
        if (!Enum.IsDefined(port.Protocol))
        {
            errors.Add(FieldError.NotSupported(field + ".protocol", port.Protocol.ToString(), Protocols));
        }

        var numeric = PolicyPortText.TryNumber(port.Port, out var number);
        if (port.Port is not null)
        {
            if (numeric)
            {
                ServiceValidation.PortNumber(errors, number, field + ".port");
            }
            else
            {
                foreach (var m in NameValidation.IsValidPortName(port.Port))
                {
                    errors.Add(FieldError.Invalid(field + ".port", port.Port, m));
                }
            }
        }

        if (port.EndPort is not { } end)
        {
            return;
        }

        if (port.Port is null)
        {
            errors.Add(FieldError.Required(field + ".port", "must be specified when endPort is specified"));
        }
        else if (!numeric)
        {
            errors.Add(FieldError.Forbidden(field + ".endPort", "may not be specified when `port` is non-numeric"));
        }
        else
        {
            ServiceValidation.PortNumber(errors, end, field + ".endPort");
            if (end < number)
            {
                errors.Add(FieldError.Invalid(field + ".endPort", end, "must be greater than or equal to `port`"));
            }
        }
    }

    public static void Peer(List<FieldError> errors, NetworkPolicyPeer peer, string field)
    {
        ArgumentNullException.ThrowIfNull(errors);
        ArgumentNullException.ThrowIfNull(peer);
        var set = (peer.PodSelector is null ? 0 : 1) + (peer.NamespaceSelector is null ? 0 : 1) + (peer.IPBlock is null ? 0 : 1);
        if (set == 0)
        {
            errors.Add(FieldError.Required(field, "must specify a peer"));
        }
        else if (peer.IPBlock is not null && set > 1)
        {
            errors.Add(FieldError.Forbidden(field, "may not specify both ipBlock and another peer"));
        }

        Selector(errors, peer.PodSelector, field + ".podSelector");
        Selector(errors, peer.NamespaceSelector, field + ".namespaceSelector");
        if (peer.IPBlock is { } block)
        {
            IPBlock(errors, block, field + ".ipBlock");
        }
    }

    public static void IPBlock(List<FieldError> errors, IPBlock block, string field)
    {
        ArgumentNullException.ThrowIfNull(errors);
        ArgumentNullException.ThrowIfNull(block);
        if (string.IsNullOrEmpty(block.Cidr))
        {
            errors.Add(FieldError.Required(field + ".cidr"));
            return;
        }

        var valid = PolicyCidrText.TryParse(block.Cidr, out var cidr);
        if (!valid)
        {
            errors.Add(FieldError.Invalid(field + ".cidr", block.Cidr, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"));
        }

        for (var i = 0; i < block.Except.Count; i++)
        {
            var path = At(field + ".except", i);
            if (!PolicyCidrText.TryParse(block.Except[i], out var except))
            {
                errors.Add(FieldError.Invalid(path, block.Except[i], "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"));
            }
            else if (valid && !(PolicyCidrText.Within(except, cidr) && except.PrefixLength > cidr.PrefixLength))
            {
                errors.Add(FieldError.Invalid(path, block.Except[i], "must be a strict subset of `cidr`"));
            }
        }
    }

    private static void Rule(List<FieldError> errors, IReadOnlyList<NetworkPolicyPort> ports, IReadOnlyList<NetworkPolicyPeer> peers, string field, string peersName)
    {
        for (var j = 0; j < ports.Count; j++)
        {
            Port(errors, ports[j], At(field + ".ports", j));
        }

        for (var j = 0; j < peers.Count; j++)
        {
            Peer(errors, peers[j], At(field + "." + peersName, j));
        }
    }

    // An out-of-range enum value prints as its number, which Create then reports as an unsupported operator.
    private static string Operator(SelectorOperator op) => Enum.IsDefined(op) ? op.ToString() : ((int)op).ToString(CultureInfo.InvariantCulture);

    private static string At(string field, int i) => string.Create(CultureInfo.InvariantCulture, $"{field}[{i}]");
}
