using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;

namespace Loom.Linux.Interop;

/// <summary>Builds one netlink request: header, fixed family header, then 4-byte aligned attributes.</summary>
internal sealed class NlRequest
{
    private byte[] _buf = new byte[512];
    private int _len = Nl.HeaderSize;

    public NlRequest(ushort type, ushort flags)
    {
        Type = type;
        Flags = flags;
    }

    public ushort Type { get; }

    public ushort Flags { get; }

    /// <summary>An rtattr's length is a u16 that counts its 4-byte header, so this is the largest value it can carry.</summary>
    public const int MaxAttrValue = ushort.MaxValue - 4;

    public static int Align(int n) => (n + 3) & ~3;

    public void Header<T>(T header)
        where T : unmanaged
    {
        var span = Reserve(Marshal.SizeOf<T>());
        MemoryMarshal.Write(span, in header);
    }

    public void Attr(ushort type, ReadOnlySpan<byte> data)
    {
        if (data.Length > MaxAttrValue)
        {
            throw new ArgumentException(
                string.Create(CultureInfo.InvariantCulture, $"netlink attribute {type & Nl.NLA_TYPE_MASK} has {data.Length} bytes; at most {MaxAttrValue} fit"),
                nameof(data));
        }

        var span = Reserve(4 + data.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(span, (ushort)(4 + data.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(span[2..], type);
        data.CopyTo(span[4..]);
    }

    public void U8(ushort type, byte v) => Attr(type, [v]);

    public void U32(ushort type, uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        Attr(type, b);
    }

    /// <summary>A 16-bit value in network byte order (e.g. IFLA_VXLAN_PORT).</summary>
    public void Be16(ushort type, ushort v)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(b, v);
        Attr(type, b);
    }

    public void String(ushort type, string s)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(s) + 1]; // NUL-terminated
        Encoding.UTF8.GetBytes(s, bytes);
        Attr(type, bytes);
    }

    public void Ip(ushort type, IPAddress ip) => Attr(type, ip.GetAddressBytes());

    public int BeginNested(ushort type)
    {
        var start = _len;
        Attr((ushort)(type | Nl.NLA_F_NESTED), []);
        return start;
    }

    public void EndNested(int start)
    {
        var len = _len - start;
        if (len > ushort.MaxValue)
        {
            var type = BinaryPrimitives.ReadUInt16LittleEndian(_buf.AsSpan(start + 2)) & Nl.NLA_TYPE_MASK;
            throw new InvalidOperationException(
                string.Create(CultureInfo.InvariantCulture, $"nested netlink attribute {type} grew to {len} bytes; at most {ushort.MaxValue} fit"));
        }

        BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(start), (ushort)len);
    }

    public ReadOnlySpan<byte> Finish(uint seq)
    {
        var hdr = new NlMsgHdr { Len = (uint)_len, Type = Type, Flags = Flags, Seq = seq };
        MemoryMarshal.Write(_buf, in hdr);
        return _buf.AsSpan(0, _len);
    }

    private Span<byte> Reserve(int size)
    {
        var aligned = Align(size);
        if (_len + aligned > _buf.Length)
        {
            Array.Resize(ref _buf, Math.Max(_buf.Length * 2, _len + aligned));
        }

        var span = _buf.AsSpan(_len, aligned);
        span.Clear(); // padding must be zero
        _len += aligned;
        return span[..size];
    }
}
