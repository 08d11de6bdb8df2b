using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Loom.Linux.Bpf;

/// <summary>
/// Names and layouts of bpf/lb4.o, the eBPF service load balancer (maps in the spirit of Cilium's lb4 maps).
/// Every struct below mirrors its C twin byte for byte; addresses and ports are stored in network byte order.
/// </summary>
public static class LbMaps
{
    public const string ObjectFile = "lb4.o";
    public const string Services = "lb4_svc";
    public const string Backends = "lb4_backends";
    public const string ReverseNat = "lb4_revnat";
    public const string ConnTrack = "lb4_ct";
    public const string Affinity = "lb4_affinity";
    public const string SocketReverse = "lb4_sk_rev";
    public const string Interfaces = "lb4_ifaces";
    public const string Maglev = "lb4_maglev";
    public const string Stats = "lb4_stats";
    public const string Snat = "lb4_snat";
    public const string Config = "lb4_config";

    public const string FromPod = "lb4_from_pod";
    public const string ToPod = "lb4_to_pod";
    public const string FromNet = "lb4_from_net";
    public const string ToNet = "lb4_to_net";
    public const string Connect4 = "lb4_connect4";
    public const string Sendmsg4 = "lb4_sendmsg4";
    public const string Recvmsg4 = "lb4_recvmsg4";

    /// <summary>lb4_service.flags: ClientIP session affinity (the master's backend_id holds the timeout).</summary>
    public const byte FlagAffinity = 0x01;

    /// <summary>lb4_service.flags: Maglev backend selection (the master's MaglevSize holds M; the table is in lb4_maglev).</summary>
    public const byte FlagMaglev = 0x02;

    /// <summary>lb4_service.flags: a node-port or external-IP frontend, served on the underlay device too.</summary>
    public const byte FlagExternal = 0x04;

    /// <summary>lb4_service.flags: externalTrafficPolicy Local (local backends only, no SNAT of the client).</summary>
    public const byte FlagExternalLocal = 0x08;

    /// <summary>lb4_backend.flags: the backend is a pod on this node.</summary>
    public const byte BackendLocal = 0x01;

    /// <summary>lb4_ifaces values: a pod's host-side veth, the underlay device (node-port programs).</summary>
    public const uint InterfacePod = 1;

    public const uint InterfaceUnderlay = 2;

    /// <summary>lb4_snat key directions: client -> remote backend (OUT), the backend's reply to the node (IN).</summary>
    public const byte SnatOut = 2;

    public const byte SnatIn = 3;

    /// <summary>Table slots per lb4_maglev entry (LB_MAGLEV_CHUNK).</summary>
    public const int MaglevChunk = 256;

    /// <summary>lb4_ct_entry.flags bit LB_CT_F_CLOSING.</summary>
    public const ushort CtClosing = 0x01;

    /// <summary>lb4_ct_entry.flags bit LB_CT_F_ESTABLISHED: a TCP packet without SYN passed (the connection lifetime applies).</summary>
    public const ushort CtEstablished = 0x02;

    /// <summary>Indexes of lb4_stats.</summary>
    public enum Stat : uint
    {
        Dnat = 0,
        ReverseNat = 1,
        Socket = 2,
        SocketReverse = 3,
        NoBackend = 4,
        Select = 5,
        AffinityHit = 6,
        PassedToKernel = 7,
    }

    /// <summary>An IPv4 address as the kernel stores it (network byte order) in a native uint.</summary>
    public static uint ToNetwork(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new ArgumentException($"{address} is not IPv4", nameof(address));
        }

        Span<byte> b = stackalloc byte[4];
        address.TryWriteBytes(b, out _);
        return MemoryMarshal.Read<uint>(b); // bytes in memory order == network order
    }

    public static IPAddress FromNetwork(uint address)
    {
        Span<byte> b = stackalloc byte[4];
        MemoryMarshal.Write(b, in address);
        return new IPAddress(b);
    }

    public static ushort PortToNetwork(int port) => BinaryPrimitives.ReverseEndianness(checked((ushort)port));

    public static int PortFromNetwork(ushort port) => BinaryPrimitives.ReverseEndianness(port);

    internal static string Proto(byte p) => p switch
    {
        6 => "tcp",
        17 => "udp",
        132 => "sctp",
        _ => p.ToString(CultureInfo.InvariantCulture),
    };
}

/// <summary>struct lb4_key (12 bytes): frontend VIP, port, backend slot (0 = master entry), protocol.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct LbServiceKey : IEquatable<LbServiceKey>
{
    public uint Address;
    public ushort Port;
    public ushort Slot;
    public byte Protocol;
    public byte Scope;
    public ushort Pad;

    public LbServiceKey(IPAddress address, int port, ProtocolType protocol, int slot)
    {
        Address = LbMaps.ToNetwork(address);
        Port = LbMaps.PortToNetwork(port);
        Slot = checked((ushort)slot);
        Protocol = (byte)protocol;
        Scope = 0;
        Pad = 0;
    }

    public readonly IPEndPoint Frontend => new(LbMaps.FromNetwork(Address), LbMaps.PortFromNetwork(Port));

    public readonly LbServiceKey WithSlot(int slot) => this with { Slot = checked((ushort)slot) };

    public readonly bool Equals(LbServiceKey other) =>
        Address == other.Address && Port == other.Port && Slot == other.Slot && Protocol == other.Protocol && Scope == other.Scope;

    public override readonly bool Equals(object? obj) => obj is LbServiceKey k && Equals(k);

    public override readonly int GetHashCode() => HashCode.Combine(Address, Port, Slot, Protocol, Scope);

    public static bool operator ==(LbServiceKey a, LbServiceKey b) => a.Equals(b);

    public static bool operator !=(LbServiceKey a, LbServiceKey b) => !a.Equals(b);

    public override readonly string ToString() => $"{Frontend}/{LbMaps.Proto(Protocol)} slot {Slot}";
}

/// <summary>
/// struct lb4_service (12 bytes). Master entry (slot 0): <see cref="BackendId"/> = affinity timeout in seconds,
/// <see cref="Count"/> = number of slots, flags, <see cref="MaglevSize"/> = M for a Maglev service.
/// Slot n: <see cref="BackendId"/> = the backend.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public record struct LbService
{
    public uint BackendId;
    public ushort Count;
    public ushort RevNatIndex;
    public byte Flags;
    public byte Pad0;
    public ushort MaglevSize;
}

/// <summary>The eBPF map value <c>struct lb4_backend</c> (8 bytes): backend id -> address, port, protocol.</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct LbBackend
{
    public uint Address;
    public ushort Port;
    public byte Protocol;
    public byte Flags;

    public LbBackend(IPAddress address, int port, ProtocolType protocol, byte flags = 0)
    {
        Address = LbMaps.ToNetwork(address);
        Port = LbMaps.PortToNetwork(port);
        Protocol = (byte)protocol;
        Flags = flags;
    }

    public readonly IPEndPoint EndPoint => new(LbMaps.FromNetwork(Address), LbMaps.PortFromNetwork(Port));

    public override readonly string ToString() => $"{EndPoint}/{LbMaps.Proto(Protocol)}{((Flags & LbMaps.BackendLocal) != 0 ? " local" : "")}";
}

/// <summary>struct lb4_reverse_nat (8 bytes): rev-nat index -> the frontend replies are rewritten to.</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct LbReverseNat
{
    public uint Address;
    public ushort Port;
    public ushort Pad;

    public LbReverseNat(IPAddress address, int port)
    {
        Address = LbMaps.ToNetwork(address);
        Port = LbMaps.PortToNetwork(port);
        Pad = 0;
    }

    public readonly IPEndPoint EndPoint => new(LbMaps.FromNetwork(Address), LbMaps.PortFromNetwork(Port));

    public override readonly string ToString() => EndPoint.ToString();
}

/// <summary>struct lb4_ct_key (16 bytes). Dir 0: client -> VIP tuple; dir 1: client -> backend tuple (for reverse NAT).</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct LbCtKey
{
    public uint SourceAddress;
    public uint DestinationAddress;
    public ushort SourcePort;
    public ushort DestinationPort;
    public byte Protocol;
    public byte Direction;
    public ushort Pad;

    public override readonly string ToString() =>
        $"{Direction switch { 0 => "svc", 1 => "rev", LbMaps.SnatOut => "snat-out", _ => "snat-in" }} {LbMaps.Proto(Protocol)} {LbMaps.FromNetwork(SourceAddress)}:{LbMaps.PortFromNetwork(SourcePort)} -> {LbMaps.FromNetwork(DestinationAddress)}:{LbMaps.PortFromNetwork(DestinationPort)}";
}

/// <summary>struct lb4_ct_entry (16 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct LbCtEntry
{
    public uint BackendId;
    public ushort RevNatIndex;

    /// <summary>LB_CT_F_*: <see cref="LbMaps.CtClosing"/> once a FIN or RST of the flow passed; its next SYN starts a new entry.</summary>
    public ushort Flags;
    public ulong LastSeenNs;
}

/// <summary>struct lb4_snat_entry (16 bytes): OUT -> the node address and NAT port; IN -> the client's address and port.</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct LbSnatEntry
{
    public uint Address;
    public ushort Port;
    public ushort RevNatIndex;
    public ulong LastSeenNs;

    public override readonly string ToString() => $"{LbMaps.FromNetwork(Address)}:{LbMaps.PortFromNetwork(Port)} rev-nat {RevNatIndex}";
}

/// <summary>
/// struct lb4_cfg (32 bytes), lb4_config[0]: the node address node-port traffic to remote backends is SNATed to,
/// lb4_ct's lifetimes in seconds (0: the program's default, Cilium's), and when the agent first wrote it
/// (CLOCK_MONOTONIC ns): a Maglev service re-chooses for a mid-stream flow without an entry only an established
/// lifetime after that, when no flow the kernel's DNAT opened before the switch to eBPF can be left.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public record struct LbConfig
{
    public uint NodeAddress;
    public uint Pad;
    public uint CtTcpSynSeconds;
    public uint CtTcpSeconds;
    public uint CtTcpCloseSeconds;
    public uint CtOtherSeconds;
    public ulong SinceNs;
}

/// <summary>struct lb4_affinity_key (16 bytes): the client (IPv4 address, or netns cookie for the socket LB) and the service.</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct LbAffinityKey
{
    public ulong Client;
    public ushort RevNatIndex;
    public byte IsCookie;
    public byte Pad0;
    public uint Pad1;
}

/// <summary>struct lb4_affinity_val (8 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct LbAffinityValue
{
    public uint BackendId;
    public uint LastUsedSeconds;
}

/// <summary>struct lb4_maglev_key (8 bytes): a Maglev service (by rev-nat index) and a chunk of its lookup table.</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct LbMaglevKey
{
    public ushort RevNatIndex;
    public ushort Pad;
    public uint Chunk;

    public LbMaglevKey(ushort revNatIndex, int chunk)
    {
        RevNatIndex = revNatIndex;
        Pad = 0;
        Chunk = checked((uint)chunk);
    }
}

/// <summary>struct lb4_maglev_chunk (1 KiB): backend ids of table slots [256 chunk, 256 chunk + 255] (0 = none).</summary>
[System.Runtime.CompilerServices.InlineArray(LbMaps.MaglevChunk)]
public struct LbMaglevChunk
{
    private uint _first;
}
