using System.Net;
using System.Net.Sockets;

namespace Loom.Datapath.Masquerade;

/// <summary>What eBPF masquerade rewrites, and where it keeps its state.</summary>
public sealed record MasqueradeOptions
{
    public const string DefaultPinDirectory = "/sys/fs/bpf/loom/masq";
    public const uint DefaultTcPriority = 0x48;
    public const uint DefaultTcHandle = 0x4d51;

    /// <summary>The address pods' traffic leaves the node with (the node's underlay IP).</summary>
    public required IPAddress NodeIp { get; init; }

    /// <summary>The pod pool (cluster podCIDR): only packets from these sources are masqueraded; never a destination.</summary>
    public required IPNetwork PodCidr { get; init; }

    /// <summary>Destinations never masqueraded besides the pod pool: Cilium's nativeRoutingCIDR (ipv4NativeRoutingCIDR).</summary>
    public IReadOnlyList<IPNetwork> NonMasqueradeCidrs { get; init; } = [];

    /// <summary>The source ports allocated, by default above Linux's ephemeral range so the node's own flows never collide.</summary>
    public int PortMin { get; init; } = 61000;

    public int PortMax { get; init; } = 65535;

    public string PinDirectory { get; init; } = DefaultPinDirectory;

    /// <summary>The node's shared flow-event pins (FlowEventMaps.DirectoryFor(BpfPinDir)); null: masq.o's events go nowhere.</summary>
    public string? EventsDirectory { get; init; }

    /// <summary>Directory holding masq.o; null: as the eBPF service backend finds lb4.o.</summary>
    public string? ObjectDirectory { get; init; }

    /// <summary>tc priority on the underlay (both directions): before host routing (0x50), which must see de-NATed replies.</summary>
    public uint TcPriority { get; init; } = DefaultTcPriority;

    public uint TcHandle { get; init; } = DefaultTcHandle;

    /// <summary>Throws ArgumentException naming the first bad setting.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(NodeIp);
        Require(NodeIp.AddressFamily == AddressFamily.InterNetwork, $"NodeIp {NodeIp} is not IPv4");
        Require(!NodeIp.Equals(IPAddress.Any), "NodeIp 0.0.0.0 is not an address");
        Require(PodCidr.BaseAddress.AddressFamily == AddressFamily.InterNetwork, $"PodCidr {PodCidr} is not IPv4");
        Require(!PodCidr.Contains(NodeIp), $"NodeIp {NodeIp} is inside PodCidr {PodCidr}");
        ArgumentNullException.ThrowIfNull(NonMasqueradeCidrs);
        foreach (var cidr in NonMasqueradeCidrs)
        {
            Require(cidr.BaseAddress.AddressFamily == AddressFamily.InterNetwork, $"NonMasqueradeCidrs: {cidr} is not IPv4");
        }

        Require(PortMin is >= 1024 and <= 65535, $"PortMin {PortMin} is outside 1024-65535");
        Require(PortMax is >= 1024 and <= 65535, $"PortMax {PortMax} is outside 1024-65535");
        Require(PortMin <= PortMax, $"PortMin {PortMin} is above PortMax {PortMax}");
    }

    private static void Require(bool ok, string message)
    {
        if (!ok)
        {
            throw new ArgumentException(message);
        }
    }
}
