using System.Net;
using System.Net.NetworkInformation;

namespace Loom.Linux;

/// <summary>What to create with <see cref="INetlink.LinkAdd"/>. Unset optional fields are left to the kernel.</summary>
public abstract record LinkSpec(string Name)
{
    public int? Mtu { get; init; }

    public PhysicalAddress? HardwareAddr { get; init; }

    /// <summary>The IFLA_INFO_KIND string.</summary>
    public abstract string Kind { get; }
}

/// <summary>A veth pair. The peer can be created straight inside another namespace (IFLA_NET_NS_FD).</summary>
public sealed record VethSpec(string Name, string PeerName) : LinkSpec(Name)
{
    public override string Kind => "veth";

    /// <summary>Namespace for the peer end; null keeps it next to <see cref="LinkSpec.Name"/>.</summary>
    public NetNsHandle? PeerNetNs { get; init; }

    public PhysicalAddress? PeerHardwareAddr { get; init; }

    /// <summary>Peer MTU; defaults to <see cref="LinkSpec.Mtu"/> so both ends agree.</summary>
    public int? PeerMtu { get; init; }
}

public sealed record BridgeSpec(string Name) : LinkSpec(Name)
{
    public override string Kind => "bridge";
}

public sealed record DummySpec(string Name) : LinkSpec(Name)
{
    public override string Kind => "dummy";
}

/// <summary>A VXLAN device the way flannel configures it (VNI, local VTEP IP, underlay device, UDP port).</summary>
public sealed record VxlanSpec(string Name, uint Vni) : LinkSpec(Name)
{
    public override string Kind => "vxlan";

    /// <summary>UDP destination port. The kernel's own default is the legacy 8472; IANA's is 4789.</summary>
    public ushort Port { get; init; } = 4789;

    /// <summary>Source address for encapsulated packets (IFLA_VXLAN_LOCAL / LOCAL6).</summary>
    public IPAddress? Local { get; init; }

    /// <summary>Underlay device index (IFLA_VXLAN_LINK); 0 = none.</summary>
    public int UnderlayIndex { get; init; }

    /// <summary>Flannel turns learning off and programs FDB/neighbour entries itself.</summary>
    public bool Learning { get; init; } = true;
}
