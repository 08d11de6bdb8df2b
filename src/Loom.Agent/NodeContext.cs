using System.Net;
using Loom.Core.Model;

namespace Loom.Agent;

/// <summary>
/// What the agent learned before any controller starts, the same for all of them for the agent's life: the node's
/// name, its config, the cluster's config, its underlay address and its pod CIDR.
/// </summary>
internal sealed record NodeContext(string Name, AgentConfig Config, ClusterConfig Cluster, IPAddress UnderlayIp, int UnderlayMtu, IPNetwork PodCidr)
{
    /// <summary>
    /// Masquerade pod traffic leaving the cluster, as far as this node is concerned: the agent's <c>ipMasq</c> turns
    /// every network's iptables masquerade off; unset, each network's own <c>masquerade</c> decides (the cluster's
    /// legacy <c>ipMasq</c> mirrors only the default network's, so it must not switch the others).
    /// </summary>
    public bool IpMasq => Config.IpMasq ?? true;
}
