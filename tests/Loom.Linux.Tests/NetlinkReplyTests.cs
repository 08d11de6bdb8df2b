using System.Buffers.Binary;
using Loom.Linux.Interop;

namespace Loom.Linux.Tests;

/// <summary>Replies that are short or lie about their lengths fail with a clear error, never an index exception.</summary>
public class NetlinkReplyTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    public void U32_of_a_short_attribute_is_a_malformed_reply(int length)
    {
        var e = Assert.Throws<LinuxException>(() => NlAttrs.U32(new byte[length]));
        Assert.Contains("u32 attribute has " + length + " bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Fixed_size_readers_check_their_length()
    {
        Assert.Throws<LinuxException>(() => NlAttrs.U8([]));
        Assert.Throws<LinuxException>(() => NlAttrs.U16([1]));
        Assert.Throws<LinuxException>(() => NlAttrs.U64(new byte[7]));
        Assert.Throws<LinuxException>(() => NlAttrs.Be16([1]));
        Assert.Throws<LinuxException>(() => NlAttrs.Ip(new byte[5]));
        Assert.Equal(0x04030201u, NlAttrs.U32([1, 2, 3, 4]));
        Assert.Equal(0x0807060504030201ul, NlAttrs.U64([1, 2, 3, 4, 5, 6, 7, 8]));
        Assert.Equal((ushort)4789, NlAttrs.Be16([0x12, 0xb5]));
    }

    [Fact]
    public void A_link_whose_mtu_attribute_is_two_bytes_is_a_malformed_reply()
    {
        // ifinfomsg (16 bytes) then IFLA_MTU with a 2-byte value.
        var payload = new byte[16 + 8];
        BinaryPrimitives.WriteUInt16LittleEndian(payload.AsSpan(16), 6);
        BinaryPrimitives.WriteUInt16LittleEndian(payload.AsSpan(18), Ifla.MTU);
        Assert.Throws<LinuxException>(() => RtNetlink.ParseLink(payload));
    }

    [Fact]
    public void A_message_shorter_than_its_family_header_is_a_malformed_reply()
    {
        Assert.Throws<LinuxException>(() => RtNetlink.ParseLink(new byte[8]));
        Assert.Throws<LinuxException>(() => RtNetlink.ParseRoute(new byte[11]));
        Assert.Throws<LinuxException>(() => RtNetlink.ParseAddr(new byte[7]));
        Assert.Throws<LinuxException>(() => RtNetlink.ParseNeigh(new byte[11]));
    }

    [Fact]
    public void A_route_prefix_longer_than_its_address_is_a_malformed_reply()
    {
        var payload = new byte[12];
        payload[0] = Libc.AF_INET;
        payload[1] = 33; // rtm_dst_len
        Assert.Throws<LinuxException>(() => RtNetlink.ParseRoute(payload));
    }

    [Fact]
    public void An_error_whose_echoed_length_is_over_int_max_still_reports_the_errno()
    {
        // nlmsgerr: error -17, then the echoed header claiming nlmsg_len 0xfffffff0, then an ext-ack TLV.
        var payload = new byte[4 + Nl.HeaderSize + 8];
        BinaryPrimitives.WriteInt32LittleEndian(payload, -17);
        BinaryPrimitives.WriteUInt32LittleEndian(payload.AsSpan(4), 0xfffffff0);
        var m = new NlMessage(Nl.NLMSG_ERROR, Nl.F_ACK_TLVS, payload);
        var e = Assert.Throws<NetlinkException>(() => NetlinkSocket.ThrowIfError(m, Rtm.NEWLINK, "x"));
        Assert.Equal(17, e.Errno);
    }

    [Fact]
    public void An_error_message_without_an_error_code_is_a_malformed_reply()
    {
        var m = new NlMessage(Nl.NLMSG_ERROR, 0, [1, 2]);
        Assert.Throws<LinuxException>(() => NetlinkSocket.ThrowIfError(m, Rtm.NEWLINK, null));
    }

    [Fact]
    public void A_header_length_over_int_max_ends_the_datagram()
    {
        var data = new byte[Nl.HeaderSize];
        BinaryPrimitives.WriteUInt32LittleEndian(data, 0x80000010);
        Assert.Empty(NetlinkSocket.Split(data, 0));
    }

    [Fact]
    public void An_attribute_too_long_for_its_u16_length_is_refused_when_building_a_request()
    {
        var req = new NlRequest(Rtm.NEWLINK, 0);
        req.Attr(1, new byte[NlRequest.MaxAttrValue]); // 65,531 bytes: the largest that fits
        var e = Assert.Throws<ArgumentException>(() => req.Attr(2, new byte[NlRequest.MaxAttrValue + 1]));
        Assert.Contains("65531", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_nested_attribute_too_long_for_its_u16_length_is_refused()
    {
        var req = new NlRequest(Rtm.NEWLINK, 0);
        var nest = req.BeginNested(Ifla.LINKINFO);
        req.Attr(1, new byte[40_000]);
        req.Attr(2, new byte[40_000]);
        Assert.Throws<InvalidOperationException>(() => req.EndNested(nest));
    }
}
