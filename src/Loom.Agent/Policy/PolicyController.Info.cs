using System.Globalization;
using System.Text;
using Loom.Core.Controllers;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Policy;

namespace Loom.Agent.Policy;

/// <summary>What <c>loom status</c> and <c>loom explain policy</c> show: from the last pass and the kernel's maps.</summary>
internal sealed partial class PolicyController
{
    public ControllerStatus Describe()
    {
        var error = loops.LastError("policy");
        return new ControllerStatus(Name, error is null && _datapath is not null, Summary, 0, error);
    }

    /// <summary>Counts for <c>loom status</c>: local endpoints enforced per direction, policies in the store.</summary>
    public (int Policies, int Endpoints, int IngressEnforced, int EgressEnforced, int Identities) Counts()
    {
        lock (_local)
        {
            return (_policies?.Snapshot.Count ?? 0, _local.Count, _local.Values.Count(l => l.Policy.IngressEnforced),
                _local.Values.Count(l => l.Policy.EgressEnforced), _identityCache?.Snapshot.Count ?? 0);
        }
    }

    /// <summary>
    /// A local pod's policy: the policies that select it, per direction the allowed peers (identities with their
    /// labels, CIDRs) and ports, then the entries the BPF maps hold for it now.
    /// </summary>
    public string Explain(string key)
    {
        LocalEndpoint? local;
        lock (_local)
        {
            local = _local.GetValueOrDefault(key);
        }

        if (local is null)
        {
            return _endpoints?.Get(key) is { } other
                ? $"pod {key} runs on node {other.Value.Node}, not {node.Name}: ask that node's agent (loom explain policy --node {other.Value.Node})\n"
                : $"no endpoint {key} on node {node.Name}\n";
        }

        var p = local.Policy;
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine(inv, $"Pod {key} on {node.Name}: identity {local.Identity}, veth ifindex {local.Ifindex}, endpoint id {local.EndpointId}, mode {NetworkYaml.Wire(Mode)}");
        sb.AppendLine(inv, $"  labels: {Labels(local.Endpoint.Labels)}");
        foreach (var dir in new[] { PolicyDirection.Ingress, PolicyDirection.Egress })
        {
            var enforced = dir == PolicyDirection.Ingress ? p.IngressEnforced : p.EgressEnforced;
            var policies = dir == PolicyDirection.Ingress ? p.IngressPolicies : p.EgressPolicies;
            var by = policies.Count > 0 ? " by " + string.Join(", ", policies) : "";
            sb.AppendLine(inv, $"{dir}: {(enforced ? "enforced" : "open (no policy selects it for this direction)")}{by}");
            if (!enforced)
            {
                continue;
            }

            var rules = p.Rules.Where(r => r.Direction == dir).ToList();
            if (rules.Count == 0)
            {
                sb.AppendLine("  nothing allowed (replies of its own connections still pass)");
            }

            foreach (var peer in rules.GroupBy(r => r.Identity).OrderBy(g => g.Key))
            {
                sb.AppendLine(inv, $"  {Peer(peer.Key, p, dir)}: {string.Join(", ", peer.Select(PortText).Distinct(StringComparer.Ordinal))}");
            }
        }

        sb.AppendLine("BPF (read back from the maps):");
        var read = _datapath?.ReadEndpoint(local.EndpointId);
        if (read is null)
        {
            sb.AppendLine("  not loaded");
        }
        else
        {
            sb.AppendLine(inv, $"  {read.Rules.Count} policy entries, {read.Cidrs.Count} CIDR entries");
            foreach (var r in read.Rules.OrderBy(r => r.Direction).ThenBy(r => r.Identity).ThenBy(r => r.Protocol).ThenBy(r => r.Port).Take(50))
            {
                sb.AppendLine(inv, $"  {r.Direction,-7} identity {r.Identity,-8} {PortText(r)}");
            }

            foreach (var c in read.Cidrs.OrderBy(c => c.Direction).ThenBy(c => c.Prefix.ToString(), StringComparer.Ordinal))
            {
                sb.AppendLine(inv, $"  {c.Direction,-7} cidr {c.Prefix} -> identity {c.Identity}");
            }
        }

        return sb.ToString();
    }

    private string Peer(uint identity, EndpointPolicy p, PolicyDirection dir)
    {
        if (identity == 0)
        {
            return "any peer";
        }

        if (identity >= ReservedIdentity.CidrBase)
        {
            var cidrs = p.Cidrs.Where(c => c.Direction == dir && c.Identity == identity).Select(c => c.Prefix.ToString());
            return $"CIDR region {identity} ({string.Join(", ", cidrs)})";
        }

        return identity switch
        {
            ReservedIdentity.Host => "reserved:host (1)",
            ReservedIdentity.World => "reserved:world (2)",
            ReservedIdentity.RemoteNode => "reserved:remote-node (6)",
            _ when _identityCache?.Get(identity.ToString(CultureInfo.InvariantCulture)) is { } i => $"identity {identity} {{{Labels(i.Value.Labels)}}}",
            _ => $"identity {identity}",
        };
    }

    private static string Labels(IReadOnlyDictionary<string, string> labels) =>
        string.Join(",", labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}"));

    internal static string PortText(PolicyRule r)
    {
        var proto = r.Protocol switch { 0 => "any protocol", 6 => "TCP", 17 => "UDP", var n => $"proto {n}" };
        if (r.Protocol == 0 || r.PortPrefixBits == 0)
        {
            return r.Protocol == 0 ? proto : proto + " all ports";
        }

        if (r.PortPrefixBits == 16)
        {
            return $"{proto}/{r.Port}";
        }

        var last = r.Port + (1 << (16 - r.PortPrefixBits)) - 1;
        return $"{proto}/{r.Port}-{last}";
    }
}
