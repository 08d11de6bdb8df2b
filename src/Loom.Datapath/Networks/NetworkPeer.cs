using System.Net;
using System.Net.NetworkInformation;

namespace Loom.Datapath.Networks;

/// <summary>
/// Another node as one network sees it: its underlay address, its block of the network's pool and, on a tunnel
/// network, the MAC of its VXLAN device there.
/// </summary>
public sealed record NetworkPeer(string Node, IPAddress NodeIp, IPNetwork Block)
{
    public PhysicalAddress? VtepMac { get; init; }

    internal VxlanPeer Vxlan => new(Node, Block, NodeIp, VtepMac ?? throw new InvalidOperationException($"peer {Node}: no VTEP MAC"));
}
