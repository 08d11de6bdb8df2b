using System.Buffers.Binary;
using System.Net;

namespace Loom.Core.Flows;

/// <summary>What kind of event a program emitted (bpf/flow_events.h LOOM_EV_*).</summary>
public enum FlowEventType : byte
{
    Unknown = 0,
    Trace = 1,
    Drop = 2,
    Policy = 3,
    Translation = 4,
}

/// <summary>Where in the datapath the packet was seen (Hubble's observation points; LOOM_OBS_*).</summary>
public enum ObservationPoint : byte
{
    Unknown = 0,
    FromEndpoint = 1,
    ToEndpoint = 2,
    ToStack = 3,
    ToOverlay = 4,
    FromOverlay = 5,
    ToNetwork = 6,
    FromNetwork = 7,
    Socket = 8,
}

/// <summary>Why a packet was dropped (LOOM_DROP_*; Cilium's numbers where it has one).</summary>
public enum DropReason : byte
{
    None = 0,
    Unroutable = 130,
    InvalidSource = 132,
    PolicyDenied = 133,
    InvalidPacket = 134,
    UnsupportedL3 = 139,
    CtMapFull = 155,
    NoServiceBackend = 158,
    NatNoPort = 165,
    PolicyDeniedDeferred = 181,
}

/// <summary>LOOM_EVF_* (the event's flag byte).</summary>
[Flags]
public enum FlowEventMarks : byte
{
    None = 0,
    Reply = 0x01,
    Egress = 0x02,
    Allowed = 0x04,
    Translated = 0x08,
}

/// <summary>
/// One event as a program wrote it into the ring buffer (struct loom_flow_event, 56 bytes): no names yet, addresses
/// as on the wire. <see cref="Decode"/> is the only reader of the layout.
/// </summary>
public readonly record struct FlowEvent(
    ulong KtimeNs,
    FlowEventType Type,
    ObservationPoint Point,
    byte Reason,
    FlowEventMarks Flags,
    byte Protocol,
    byte TcpFlags,
    ushort EndpointId,
    uint Ifindex,
    IPAddress Source,
    IPAddress Destination,
    ushort SourcePort,
    ushort DestinationPort,
    IPAddress? OriginalDestination,
    ushort OriginalDestinationPort,
    uint SourceIdentity,
    uint DestinationIdentity,
    uint Length)
{
    public const int Size = 56;

    public DropReason DropReason => Type == FlowEventType.Drop ? (DropReason)Reason : DropReason.None;

    /// <summary>Reads one record; throws ArgumentException when <paramref name="data"/> is shorter than <see cref="Size"/>.</summary>
    public static FlowEvent Decode(ReadOnlySpan<byte> data)
    {
        if (data.Length < Size)
        {
            throw new ArgumentException($"a flow event is {Size} bytes, got {data.Length}", nameof(data));
        }

        var flags = (FlowEventMarks)data[11];
        return new FlowEvent(
            KtimeNs: BinaryPrimitives.ReadUInt64LittleEndian(data),
            Type: (FlowEventType)data[8],
            Point: (ObservationPoint)data[9],
            Reason: data[10],
            Flags: flags,
            Protocol: data[12],
            TcpFlags: data[13],
            EndpointId: BinaryPrimitives.ReadUInt16LittleEndian(data[14..]),
            Ifindex: BinaryPrimitives.ReadUInt32LittleEndian(data[16..]),
            Source: new IPAddress(data.Slice(20, 4)),
            Destination: new IPAddress(data.Slice(24, 4)),
            SourcePort: BinaryPrimitives.ReadUInt16BigEndian(data[28..]),
            DestinationPort: BinaryPrimitives.ReadUInt16BigEndian(data[30..]),
            OriginalDestination: flags.HasFlag(FlowEventMarks.Translated) ? new IPAddress(data.Slice(32, 4)) : null,
            OriginalDestinationPort: BinaryPrimitives.ReadUInt16BigEndian(data[36..]),
            SourceIdentity: BinaryPrimitives.ReadUInt32LittleEndian(data[40..]),
            DestinationIdentity: BinaryPrimitives.ReadUInt32LittleEndian(data[44..]),
            Length: BinaryPrimitives.ReadUInt32LittleEndian(data[48..]));
    }
}
