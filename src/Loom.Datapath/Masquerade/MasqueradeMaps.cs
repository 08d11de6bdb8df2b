using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Masquerade;

/// <summary>
/// Names and layouts of bpf/masq.o. Every struct mirrors its C twin byte for byte; addresses and ports are in network
/// byte order (the port range of the config in host order).
/// </summary>
public static class MasqueradeMaps
{
    public const string ObjectFile = "masq.o";
    public const string Snat = "masq_snat_tbl";
    public const string Reverse = "masq_rev";
    public const string NonMasquerade = "masq_nonmasq";
    public const string Config = "masq_config";
    public const string Interfaces = "masq_ifaces";
    public const string Stats = "masq_stats";
    public const string SnatProgram = "masq_snat";
    public const string DenatProgram = "masq_denat";

    /// <summary>Indexes of masq_stats.</summary>
    public enum Stat
    {
        Snat = 0,
        Denat = 1,
        NonMasquerade = 2,
        NoPort = 3,
        NewFlow = 4,
        Inbound = 5,
        MidFlow = 6,
    }

    internal const int StatCount = 8;
}

/// <summary>struct masq_tuple (16 bytes): a flow as one direction sees it. ICMP echo: the id in the requester's port.</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct MasqTuple
{
    public uint SourceAddress;
    public uint DestinationAddress;
    public ushort SourcePort;
    public ushort DestinationPort;
    public byte Protocol;
    public byte Pad0;
    public ushort Pad1;

    public readonly IPAddress Source => LbMaps.FromNetwork(SourceAddress);

    public readonly IPAddress Destination => LbMaps.FromNetwork(DestinationAddress);

    public readonly ProtocolType ProtocolType => (ProtocolType)Protocol;
}

/// <summary>struct masq_snat_val (16 bytes): the allocated source port of a masqueraded flow.</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct MasqSnatValue
{
    public ushort NatPort;
    public ushort Pad0;
    public uint Pad1;
    public ulong LastSeenNs;
}

/// <summary>struct masq_rev_val (16 bytes): the pod address and port a reply is given back.</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct MasqReverseValue
{
    public uint Address;
    public ushort Port;
    public ushort Pad;
    public ulong LastSeenNs;
}

/// <summary>struct masq_lpm_key (8 bytes): an LPM trie key, prefix length then the IPv4 network.</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct MasqLpmKey(uint PrefixLength, uint Address);

/// <summary>struct masq_cfg (16 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct MasqConfig
{
    public uint NodeIp;
    public uint PodNet;
    public uint PodMask;
    public ushort PortMin;
    public ushort PortMax;
}

/// <summary>One masqueraded flow: the pod's side, the destination, and the node port it goes out with.</summary>
public sealed record MasqueradeEntry(ProtocolType Protocol, IPEndPoint Pod, IPEndPoint Destination, int NatPort);
