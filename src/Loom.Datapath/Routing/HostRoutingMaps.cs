namespace Loom.Datapath.Routing;

/// <summary>Names and indexes of bpf/host_routing.o (mirrors the #defines of host_routing.c).</summary>
public static class HostRoutingMaps
{
    public const string ObjectFile = "host_routing.o";
    public const string Interfaces = "hr_ifaces";
    public const string Stats = "hr_stats";
    public const string Config = "hr_config";
    public const string FromPod = "hr_from_pod";
    public const string FromUnderlay = "hr_from_underlay";

    /// <summary>HR_REASONS: hr_stats holds this many counters per program.</summary>
    public const int Reasons = 10;

    /// <summary>hr_config flags: HR_F_EGRESS_DELIVERY.</summary>
    public const uint FlagEgressDelivery = 1;
}

/// <summary>What a device is to host routing (hr_ifaces values).</summary>
public enum HostRoutingRole : uint
{
    /// <summary>A pod's host-side veth: hr_from_pod on its ingress; a target of bpf_redirect_peer.</summary>
    Pod = 1,

    /// <summary>The underlay device: hr_from_underlay on its ingress.</summary>
    Underlay = 2,
}

/// <summary>The program a counter belongs to (HR_PROG_*).</summary>
public enum HostRoutingProgram
{
    FromPod = 0,
    FromUnderlay = 1,
}

/// <summary>What a program did with a packet (HR_* reasons of host_routing.c).</summary>
public enum HostRoutingVerdict
{
    /// <summary>Into a local pod's namespace with bpf_redirect_peer.</summary>
    RedirectPeer = 0,

    /// <summary>Out of the FIB's device with bpf_redirect_neigh.</summary>
    RedirectNeigh = 1,

    /// <summary>Passed to the stack: not IPv4.</summary>
    PassNotIpv4 = 2,

    /// <summary>Passed: not forwarded (BPF_FIB_LKUP_RET_NOT_FWDED): for this node, or no route at all.</summary>
    PassNotForwarded = 3,

    /// <summary>Passed: a blackhole, unreachable or prohibit route (the stack answers with ICMP or drops).</summary>
    PassNoRoute = 4,

    /// <summary>Passed: larger than the egress MTU.</summary>
    PassFragNeeded = 5,

    /// <summary>Passed: the TTL would expire.</summary>
    PassTtl = 6,

    /// <summary>Passed: forwarding disabled, no source address, same device, or (from the underlay) not for a local pod.</summary>
    PassOther = 7,

    /// <summary>Into a local pod with bpf_redirect_neigh out of its host veth (<see cref="PodDelivery.Egress"/>).</summary>
    RedirectEgress = 8,

    /// <summary>Passed: the kernel's conntrack NATs the flow (opened through iptables before the switch to eBPF).</summary>
    PassKernelNat = 9,
}

/// <summary>hr_stats summed over the CPUs.</summary>
public sealed class HostRoutingCounters
{
    private readonly ulong[] _values;

    internal HostRoutingCounters(ulong[] values) => _values = values;

    public ulong this[HostRoutingProgram program, HostRoutingVerdict verdict] =>
        _values[((int)program * HostRoutingMaps.Reasons) + (int)verdict];

    /// <summary>Every packet a program passed to the host stack, whatever the reason.</summary>
    public ulong Passed(HostRoutingProgram program) =>
        Enum.GetValues<HostRoutingVerdict>().Where(v => v is >= HostRoutingVerdict.PassNotIpv4 and <= HostRoutingVerdict.PassOther).Aggregate(0UL, (sum, v) => sum + this[program, v]);

    public override string ToString() => string.Join(", ",
        from p in Enum.GetValues<HostRoutingProgram>()
        from v in Enum.GetValues<HostRoutingVerdict>()
        where this[p, v] != 0
        select $"{p}.{v}={this[p, v]}");
}
