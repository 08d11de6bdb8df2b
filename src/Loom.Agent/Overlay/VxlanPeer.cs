using System.Net;
using System.Net.NetworkInformation;

namespace Loom.Agent.Overlay;

/// <summary>What this node needs to know of another to reach its pods over VXLAN: flannel's lease, in short.</summary>
public sealed record VxlanPeer(string Node, IPNetwork PodCidr, IPAddress UnderlayIp, PhysicalAddress VtepMac)
{
    /// <summary>The peer's VTEP address inside the overlay: its pod CIDR's network address (flannel's scheme).</summary>
    public IPAddress VtepIp => PodCidr.BaseAddress;
}
