using System.Globalization;
using Loom.Core.Model;
using Loom.Core.Selection;

namespace Loom.Core.Validation;

/// <summary>
/// A cluster's networks together (a cluster file, or the store after an apply), its settings against them, and the
/// NodeConfigs that name them. Nothing is stored unless this finds no error.
/// </summary>
public static class ClusterValidation
{
    /// <summary>Every network on its own, names unique, and no two sharing pool addresses, a tunnel port or a device.</summary>
    public static void Networks(List<FieldError> errors, IReadOnlyList<Network> networks, string field = "networks")
    {
        ArgumentNullException.ThrowIfNull(errors);
        ArgumentNullException.ThrowIfNull(networks);
        if (networks.Count == 0)
        {
            errors.Add(FieldError.Required(field, "a cluster has at least one network"));
        }

        for (var i = 0; i < networks.Count; i++)
        {
            var prefix = string.Create(CultureInfo.InvariantCulture, $"{field}[{i}].");
            NetworkValidation.Validate(errors, networks[i], prefix);
            var earlier = networks.Take(i).ToList();
            if (earlier.Any(n => string.Equals(n.Name, networks[i].Name, StringComparison.Ordinal)))
            {
                errors.Add(FieldError.Duplicate(prefix + "name", networks[i].Name));
            }

            NetworkValidation.Conflicts(errors, networks[i], earlier, prefix);
        }
    }

    /// <summary>The cluster settings against its networks: a default that exists, pools clear of the service CIDR.</summary>
    public static IReadOnlyList<FieldError> Validate(ClusterConfig cluster, IReadOnlyList<Network> networks, string networksField = "networks")
    {
        ArgumentNullException.ThrowIfNull(cluster);
        ArgumentNullException.ThrowIfNull(networks);
        var errors = new List<FieldError>();
        Networks(errors, networks, networksField);
        DefaultNetwork(errors, cluster.DefaultNetwork, networks);
        if (!Enum.IsDefined(cluster.ServiceBackend))
        {
            errors.Add(FieldError.NotSupported("serviceBackend", cluster.ServiceBackend.ToString(), "supported values: \"iptables\", \"nftables\", \"ebpf\""));
        }

        if (!Enum.IsDefined(cluster.PolicyEnforcementMode))
        {
            errors.Add(FieldError.NotSupported("policyEnforcementMode", cluster.PolicyEnforcementMode.ToString(), "supported values: \"default\", \"always\", \"never\""));
        }

        if (cluster.PodCidrGraceSeconds < 0)
        {
            errors.Add(FieldError.Invalid("podCidrGraceSeconds", cluster.PodCidrGraceSeconds, "must be 0 (keep blocks forever) or more"));
        }

        for (var i = 0; i < networks.Count; i++)
        {
            if (networks[i].PodCidr.PrefixLength > 0 && NetworkValidation.Overlap(networks[i].PodCidr, cluster.ServiceCidr))
            {
                errors.Add(FieldError.Invalid(string.Create(CultureInfo.InvariantCulture, $"{networksField}[{i}].podCIDR"), networks[i].PodCidr.ToString(),
                    $"overlaps the service CIDR {cluster.ServiceCidr}"));
            }
        }

        return errors;
    }

    public static void DefaultNetwork(List<FieldError> errors, string? name, IEnumerable<Network> networks, string field = "defaultNetwork")
    {
        ArgumentNullException.ThrowIfNull(errors);
        ArgumentNullException.ThrowIfNull(networks);
        if (string.IsNullOrEmpty(name))
        {
            errors.Add(FieldError.Required(field, "the network new pods join unless a NodeConfig says otherwise"));
        }
        else if (!networks.Any(n => n.Name == name))
        {
            errors.Add(FieldError.Invalid(field, name, $"no such network; the networks are: {Names(networks)}"));
        }
    }

    /// <summary>A NodeConfig as stored: its node name, the network it names (one of <paramref name="networks"/>), its selector.</summary>
    public static IReadOnlyList<FieldError> NodeConfig(NodeConfig config, IEnumerable<Network> networks)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(networks);
        var errors = new List<FieldError>();
        ObjectValidation.SubdomainName(errors, config.Node, "node");
        if (config.ServiceBackend is { } b && !Enum.IsDefined(b))
        {
            errors.Add(FieldError.NotSupported("serviceBackend", b.ToString(), "supported values: \"iptables\", \"nftables\", \"ebpf\""));
        }

        if (config.Network is { } network && !networks.Any(n => n.Name == network))
        {
            errors.Add(FieldError.Invalid("network", network, $"no such network; the networks are: {Names(networks)}"));
        }

        if (config.NodeSelector is { } s)
        {
            LabelSelector.Create(s.MatchLabels, [.. s.MatchExpressions.Select(e => (e.Key, e.Operator.ToString(), e.Values))], "nodeSelector", errors);
        }

        return errors;
    }

    private static string Names(IEnumerable<Network> networks)
    {
        var names = networks.Select(n => FieldError.Quote(n.Name)).ToList();
        return names.Count == 0 ? "(none)" : string.Join(", ", names);
    }
}
