using System.Net;
using Loom.Core.Ipam;
using Loom.Core.Model;

namespace Loom.Agent.Networks;

/// <summary>
/// One network as this node runs it: the stored object and this node's block of its pool. Every node runs every
/// network; <see cref="INodeNetworks.Primary"/> is the one its new pods join.
/// </summary>
internal sealed record NetworkOnNode(Network Network, IPNetwork Block)
{
    public string Name => Network.Name;

    /// <summary>The block's first address: the gateway on cni0 (bridge) or the router IP on loom_host (routed).</summary>
    public IPAddress RouterIp => IpRange.DefaultGateway(Block);

    /// <summary>Destinations this network's pods reach with their own source address (no masquerade).</summary>
    public IPNetwork NoMasqueradeCidr => Network.NativeRoutingCidr ?? Network.PodCidr;

    /// <summary>Device, routes and peers are in place: the CNI config of this network may be written.</summary>
    public bool Ready { get; init; }
}

/// <summary>The networks this node runs, for the controllers that follow them (masquerade, host routing, CNI config).</summary>
internal interface INodeNetworks
{
    /// <summary>Every network programmed on this node, ready or not; a snapshot, replaced on each change.</summary>
    IReadOnlyList<NetworkOnNode> Current { get; }

    /// <summary>The name of the network this node's new pods join; null until resolved.</summary>
    string? Primary { get; }

    /// <summary>Raised (on the network controller's loop) after <see cref="Current"/> or <see cref="Primary"/> changed.</summary>
    event Action? Changed;
}
