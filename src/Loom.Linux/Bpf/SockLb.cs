using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Loom.Linux.Bpf;

/// <summary>
/// Key of bpf/sock_lb.c's lb4_services / lb4_reverse maps: an IPv4 address, port and protocol, all as the
/// kernel sees them (address and port in network byte order). 8 bytes, same layout as struct lb4_key.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct Lb4Key
{
    public Lb4Key(IPAddress address, ushort port, ProtocolType protocol)
    {
        Address = Lb4.ToNetwork(address);
        Port = BinaryPrimitives.ReverseEndianness(port);
        Protocol = (byte)protocol;
        Pad = 0;
    }

    public uint Address { get; init; }

    public ushort Port { get; init; }

    public byte Protocol { get; init; }

    public byte Pad { get; init; }

    public IPEndPoint EndPoint => new(Lb4.FromNetwork(Address), BinaryPrimitives.ReverseEndianness(Port));

    public override string ToString() => $"{EndPoint}/{(ProtocolType)Protocol}";
}

/// <summary>Value of lb4_services (a backend) and lb4_reverse (a service): struct lb4_backend, 8 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct Lb4Backend
{
    public Lb4Backend(IPAddress address, ushort port)
    {
        Address = Lb4.ToNetwork(address);
        Port = BinaryPrimitives.ReverseEndianness(port);
        Pad = 0;
    }

    public uint Address { get; init; }

    public ushort Port { get; init; }

    public ushort Pad { get; init; }

    public IPEndPoint EndPoint => new(Lb4.FromNetwork(Address), BinaryPrimitives.ReverseEndianness(Port));

    public override string ToString() => EndPoint.ToString();
}

/// <summary>Names in bpf/sock_lb.o and helpers to fill its maps.</summary>
public static class Lb4
{
    public const string ObjectFile = "sock_lb.o";
    public const string ServicesMap = "lb4_services";
    public const string ReverseMap = "lb4_reverse";
    public const string StatsMap = "lb4_stats";
    public const string Connect4 = "sock4_connect";
    public const string Sendmsg4 = "sock4_sendmsg";
    public const string Recvmsg4 = "sock4_recvmsg";

    /// <summary>Maps service VIP:port/proto to one backend (and, for UDP recvmsg, the backend back to the VIP).</summary>
    public static void SetService(BpfObject obj, IPEndPoint vip, ProtocolType protocol, IPEndPoint backend)
    {
        ArgumentNullException.ThrowIfNull(obj);
        ArgumentNullException.ThrowIfNull(vip);
        ArgumentNullException.ThrowIfNull(backend);
        obj.Map<Lb4Key, Lb4Backend>(ServicesMap).Update(
            new Lb4Key(vip.Address, (ushort)vip.Port, protocol), new Lb4Backend(backend.Address, (ushort)backend.Port));
        obj.Map<Lb4Key, Lb4Backend>(ReverseMap).Update(
            new Lb4Key(backend.Address, (ushort)backend.Port, protocol), new Lb4Backend(vip.Address, (ushort)vip.Port));
    }

    internal static uint ToNetwork(IPAddress address)
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

    internal static IPAddress FromNetwork(uint address)
    {
        Span<byte> b = stackalloc byte[4];
        MemoryMarshal.Write(b, in address);
        return new IPAddress(b);
    }
}
