using System.Runtime.InteropServices;

namespace Loom.Linux.Bpf;

/// <summary>
/// Names and layouts of bpf/policy.o, the eBPF network policy (identities, per-endpoint allow tries, a connection
/// table). Every struct mirrors its C twin byte for byte; addresses and ports are in network byte order.
/// </summary>
public static class PolicyMaps
{
    public const string ObjectFile = "policy.o";
    public const string Ipcache = "pol_ipcache";
    public const string Endpoints = "pol_endpoints";
    public const string Rules = "pol_rules";
    public const string Cidrs = "pol_cidr";
    public const string ConnTrack = "pol_ct";
    public const string Config = "pol_config";
    public const string Stats = "pol_stats";
    public const string Interfaces = "pol_ifaces";

    public const string FromPod = "pol_from_pod";
    public const string ToPod = "pol_to_pod";
    public const string ToNode = "pol_to_node";
    public const string FromNode = "pol_from_node";

    /// <summary>POL_REASONS: pol_stats has this many counters per direction (ingress at 0, egress at this index).</summary>
    public const int Reasons = 20;

    /// <summary>Prefix length of pol_rules' fixed part (ep_id, identity, dir): every protocol.</summary>
    public const uint RuleFixedBits = 72;

    /// <summary>Prefix length of pol_cidr's fixed part (ep_id, dir, pad).</summary>
    public const uint CidrFixedBits = 64;

    /// <summary>pol_endpoint.flags.</summary>
    public const uint EnforceIngress = 1;

    public const uint EnforceEgress = 2;

    /// <summary>pol_cfg.flags.</summary>
    public const uint FlagEnabled = 1;

    public const uint FlagAllowHost = 2;

    /// <summary>pol_ct_val.flags: POL_CT_F_CLOSING (FIN or RST seen).</summary>
    public const uint CtClosing = 1;

    /// <summary>skb->mark of a packet whose egress verdict waits for the kernel's DNAT: (ep_id &lt;&lt; 16) | Defer (or Open).</summary>
    public const uint MarkMask = 0x0F00;

    public const uint MarkDefer = 0x0E00;

    public const uint MarkOpen = 0x0F00;
}

/// <summary>struct pol_lpm_ip (8 bytes): pol_ipcache's key.</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct PolIpKey(uint PrefixLength, uint Address);

/// <summary>struct pol_ident (8 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct PolIdentity(uint Identity, uint Flags);

/// <summary>
/// struct pol_endpoint (16 bytes): pol_endpoints' value, keyed by the host veth's ifindex. <see cref="Address"/> is the
/// pod's IPv4 address in network byte order as stored (0: its source is not checked).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public record struct PolEndpoint(uint EndpointId, uint Identity, uint Flags, uint Address = 0);

/// <summary>struct pol_rule_key (16 bytes): {ep_id, identity, dir} (72 bits), then proto (8), then the port's prefix.</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct PolRuleKey
{
    public uint PrefixLength;
    public uint EndpointId;
    public uint Identity;
    public byte Direction;
    public byte Protocol;
    public ushort Port;
}

/// <summary>struct pol_cidr_key (16 bytes): {ep_id, dir, pad} (64 bits), then the address's prefix.</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct PolCidrKey
{
    public uint PrefixLength;
    public uint EndpointId;
    public byte Direction;
    public byte Pad0;
    public ushort Pad1;
    public uint Address;
}

/// <summary>struct pol_ct_key (16 bytes): a flow as one packet sees it, and the endpoint's direction it was allowed in.</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct PolCtKey
{
    public uint SourceAddress;
    public uint DestinationAddress;
    public ushort SourcePort;
    public ushort DestinationPort;
    public byte Protocol;
    public byte Direction;
    public ushort Pad;
}

/// <summary>struct pol_ct_val (16 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct PolCtValue(ulong LastSeenNs, uint Flags, uint EndpointId);

/// <summary>struct pol_cfg (20 bytes): the tunnel ports in network order, 0 unused (POL_TUNNEL_PORTS = 4).</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct PolConfig(uint Flags, uint ServiceNet, uint ServiceMask, ushort TunnelPort0, ushort TunnelPort1, ushort TunnelPort2, ushort TunnelPort3)
{
    public const int TunnelPorts = 4;

    public PolConfig(uint flags, uint serviceNet, uint serviceMask)
        : this(flags, serviceNet, serviceMask, 0, 0, 0, 0)
    {
    }
}
