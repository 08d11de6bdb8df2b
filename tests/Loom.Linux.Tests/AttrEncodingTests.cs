using System.Buffers.Binary;
using CsCheck;
using Loom.Linux.Interop;

namespace Loom.Linux.Tests;

public class AttrEncodingTests
{
    [Fact]
    public void Attributes_round_trip_with_4_byte_alignment_and_nesting()
    {
        var attr = Gen.Select(Gen.UShort[1, 0x3fff], Gen.Byte.Array[0, 40]);
        Gen.Select(attr.Array[0, 8], attr.Array[0, 5]).Sample((outer, inner) =>
        {
            var req = new NlRequest(Rtm.NEWLINK, 0);
            req.Header(new IfInfoMsg { Index = 7 });
            foreach (var (t, v) in outer)
            {
                req.Attr(t, v);
            }

            var nest = req.BeginNested(Ifla.LINKINFO);
            foreach (var (t, v) in inner)
            {
                req.Attr(t, v);
            }

            req.EndNested(nest);
            var bytes = req.Finish(1).ToArray();

            Assert.Equal(0, bytes.Length % 4);
            Assert.Equal((uint)bytes.Length, BinaryPrimitives.ReadUInt32LittleEndian(bytes));
            var got = new List<(ushort, byte[])>();
            var nested = new List<(ushort, byte[])>();
            foreach (var a in new NlAttrs(bytes.AsSpan(Nl.HeaderSize + 16)))
            {
                if (a.Type == Ifla.LINKINFO && got.Count == outer.Length)
                {
                    foreach (var n in new NlAttrs(a.Value))
                    {
                        nested.Add((n.Type, n.Value.ToArray()));
                    }
                }
                else
                {
                    got.Add((a.Type, a.Value.ToArray()));
                }
            }

            Assert.Equal(outer.Select(o => (o.Item1, Convert.ToHexString(o.Item2))), got.Select(g => (g.Item1, Convert.ToHexString(g.Item2))));
            Assert.Equal(inner.Select(o => (o.Item1, Convert.ToHexString(o.Item2))), nested.Select(g => (g.Item1, Convert.ToHexString(g.Item2))));
        });
    }

    [Fact]
    public void Vxlan_port_is_network_byte_order()
    {
        var req = new NlRequest(Rtm.NEWLINK, 0);
        req.Be16(Ifla.VXLAN_PORT, 4789);
        var bytes = req.Finish(1).ToArray();
        Assert.Equal(new byte[] { 6, 0, 15, 0, 0x12, 0xb5, 0, 0 }, bytes[Nl.HeaderSize..]);
    }
}
