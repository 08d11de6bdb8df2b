using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Runtime.InteropServices;
using System.Text;

namespace Loom.Linux.Interop;

/// <summary>Iterates rtattrs in a payload. Yields (type without NLA_F_* bits, value).</summary>
/// <remarks>
/// The readers below check each value's length: a reply the kernel (or anything on the socket) got wrong
/// must surface as a clear <see cref="LinuxException"/>, not as an index error deep in a parser.
/// </remarks>
internal ref struct NlAttrs
{
    private ReadOnlySpan<byte> _rest;

    public NlAttrs(ReadOnlySpan<byte> data) => _rest = data;

    public ushort Type { get; private set; }

    public ReadOnlySpan<byte> Value { get; private set; }

    public readonly NlAttrs GetEnumerator() => this;

    public readonly NlAttrs Current => this;

    public bool MoveNext()
    {
        if (_rest.Length < 4)
        {
            return false;
        }

        int len = BinaryPrimitives.ReadUInt16LittleEndian(_rest);
        if (len < 4 || len > _rest.Length)
        {
            return false;
        }

        Type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(_rest[2..]) & Nl.NLA_TYPE_MASK);
        Value = _rest[4..len];
        _rest = _rest[Math.Min(NlRequest.Align(len), _rest.Length)..];
        return true;
    }

    public static byte U8(ReadOnlySpan<byte> v) => Sized(v, 1, "u8")[0];

    public static ushort U16(ReadOnlySpan<byte> v) => BinaryPrimitives.ReadUInt16LittleEndian(Sized(v, 2, "u16"));

    public static uint U32(ReadOnlySpan<byte> v) => BinaryPrimitives.ReadUInt32LittleEndian(Sized(v, 4, "u32"));

    public static ulong U64(ReadOnlySpan<byte> v) => BinaryPrimitives.ReadUInt64LittleEndian(Sized(v, 8, "u64"));

    public static ushort Be16(ReadOnlySpan<byte> v) => BinaryPrimitives.ReadUInt16BigEndian(Sized(v, 2, "be16"));

    public static string Str(ReadOnlySpan<byte> v)
    {
        var nul = v.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul >= 0 ? v[..nul] : v);
    }

    public static IPAddress Ip(ReadOnlySpan<byte> v) => v.Length is 4 or 16
        ? new IPAddress(v)
        : throw Malformed($"an address attribute has {v.Length} bytes, not 4 or 16");

    public static PhysicalAddress Mac(ReadOnlySpan<byte> v) => new(v.ToArray());

    /// <summary>Reads the fixed family header (ifinfomsg, rtmsg...) that opens a message's payload.</summary>
    public static T Header<T>(ReadOnlySpan<byte> payload)
        where T : unmanaged
    {
        var size = Marshal.SizeOf<T>();
        return payload.Length >= size
            ? MemoryMarshal.Read<T>(payload)
            : throw Malformed($"a {typeof(T).Name} needs {size} bytes, the message has {payload.Length}");
    }

    public static LinuxException Malformed(string what) => new($"malformed netlink reply: {what}");

    private static ReadOnlySpan<byte> Sized(ReadOnlySpan<byte> v, int size, string kind) => v.Length >= size
        ? v[..size]
        : throw Malformed(string.Create(CultureInfo.InvariantCulture, $"a {kind} attribute has {v.Length} bytes"));
}
