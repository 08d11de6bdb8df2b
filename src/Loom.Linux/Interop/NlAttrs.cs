using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using System.Text;

namespace Loom.Linux.Interop;

/// <summary>Iterates rtattrs in a payload. Yields (type without NLA_F_* bits, value).</summary>
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

    public static uint U32(ReadOnlySpan<byte> v) => BinaryPrimitives.ReadUInt32LittleEndian(v);

    public static ushort Be16(ReadOnlySpan<byte> v) => BinaryPrimitives.ReadUInt16BigEndian(v);

    public static string Str(ReadOnlySpan<byte> v)
    {
        var nul = v.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul >= 0 ? v[..nul] : v);
    }

    public static IPAddress Ip(ReadOnlySpan<byte> v) => new(v);

    public static PhysicalAddress Mac(ReadOnlySpan<byte> v) => new(v.ToArray());
}
