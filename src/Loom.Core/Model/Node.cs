using System.Net;

namespace Loom.Core.Model;

/// <summary>A cluster member as its agent registers it: where its underlay is and which pod CIDRs it routes.</summary>
public sealed record Node
{
    public required string Name { get; init; }

    /// <summary>The interface whose address tunnels and native routes use (e.g. "eth1").</summary>
    public required string UnderlayInterface { get; init; }

    public required IPAddress UnderlayIp { get; init; }

    public IReadOnlyList<IPNetwork> PodCidrs { get; set; } = [];

    public IReadOnlyDictionary<string, string> Labels { get; set; } = new Dictionary<string, string>();

    /// <summary>MAC of the node's VXLAN device, so peers can fill their FDB; null until the tunnel exists.</summary>
    public string? VtepMac { get; init; }

    /// <summary>
    /// The node's block (and VTEP) on every network it runs, by network name. <see cref="PodCidrs"/> and
    /// <see cref="VtepMac"/> mirror the cluster's default network for readers that know one network only.
    /// </summary>
    public IReadOnlyDictionary<string, NodeNetwork> Networks { get; set; } = new Dictionary<string, NodeNetwork>();

    public DateTimeOffset Heartbeat { get; init; }

    public bool Ready { get; init; }

    public IReadOnlyList<Taint> Taints { get; set; } = [];

    /// <summary>Cordoned: no new pods, existing ones keep running.</summary>
    public bool Unschedulable { get; init; }
}
