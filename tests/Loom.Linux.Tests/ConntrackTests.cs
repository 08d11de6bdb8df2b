using System.Net;
using System.Net.Sockets;
using Loom.Linux.Interop;
using Loom.Testing;

namespace Loom.Linux.Tests;

/// <summary>
/// ctnetlink against the kernel: a node namespace with a DNAT rule (which also turns conntrack on there) sends UDP to a
/// service address; the pod namespace behind a veth answers. Everything lives in the two namespaces.
/// </summary>
public sealed class ConntrackTests : IDisposable
{
    private static readonly IPAddress ServiceIp = IPAddress.Parse("10.96.7.7");
    private static readonly IPAddress PodIp = IPAddress.Parse("10.77.0.2");
    private readonly TestNetns _node = new("ct");
    private readonly TestNetns _pod = new("ctpod");
    private readonly Socket _server = null!;

    public ConntrackTests()
    {
        try
        {
            _server = Setup();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private Socket Setup()
    {
        var nl = _node.Netlink;
        nl.LinkSetUp(nl.LinkByName("lo")!.Index);
        var veth = nl.LinkAdd(new VethSpec("v1", "eth0") { PeerNetNs = _pod.Handle });
        nl.AddrAdd(veth.Index, IPAddress.Parse("10.77.0.1"), 24);
        nl.LinkSetUp(veth.Index);
        nl.RouteAdd(new Route(IPNetwork.Parse("10.96.7.0/24")) { OutputIndex = veth.Index });
        var pnl = _pod.Netlink;
        var eth0 = pnl.LinkByName("eth0")!;
        pnl.AddrAdd(eth0.Index, PodIp, 24);
        pnl.LinkSetUp(eth0.Index);
        Iptables("-t", "nat", "-A", "OUTPUT", "-d", "10.96.7.7/32", "-p", "udp", "--dport", "53", "-j", "DNAT", "--to-destination", "10.77.0.2:5353");
        return _pod.Run(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            s.Bind(new IPEndPoint(IPAddress.Any, 5353));
            return s;
        });
    }

    [Fact]
    public void A_dnat_udp_flow_is_dumped_with_the_backend_as_reply_source_and_deleted_by_its_original_tuple()
    {
        Exchange(40001);
        using var ct = Conntrack.OpenIn(_node.Handle);
        var flow = Assert.Single(ct.List(), f => f.Original.Destination.Equals(ServiceIp));
        Assert.Equal(new ConntrackTuple(IPAddress.Parse("10.77.0.1"), ServiceIp, ProtocolType.Udp, 40001, 53), flow.Original);
        Assert.Equal(new ConntrackTuple(PodIp, IPAddress.Parse("10.77.0.1"), ProtocolType.Udp, 5353, 40001), flow.Reply);
        Assert.True(flow.Status.HasFlag(ConntrackStatus.DstNat), flow.Status.ToString());
        Assert.True(flow.Status.HasFlag(ConntrackStatus.SeenReply), flow.Status.ToString());
        Assert.InRange(flow.TimeoutSeconds, 1u, 300u);

        ct.Delete(flow.Original);
        Assert.DoesNotContain(ct.List(), f => f.Original.Destination.Equals(ServiceIp));
    }

    [Fact]
    public void Deleting_an_entry_that_is_not_there_names_the_tuple_and_the_errno()
    {
        using var ct = Conntrack.OpenIn(_node.Handle);
        var tuple = new ConntrackTuple(IPAddress.Parse("10.77.0.1"), ServiceIp, ProtocolType.Udp, 40999, 53);
        var e = Assert.Throws<NetlinkException>(() => ct.Delete(tuple));
        Assert.Equal(Libc.ENOENT, e.Errno);
        Assert.Equal("IPCTNL_MSG_CT_DELETE", e.Operation);
        Assert.Contains("udp 10.77.0.1:40999 -> 10.96.7.7:53", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_tuple_the_kernel_cannot_take_is_refused_before_anything_is_sent()
    {
        using var ct = Conntrack.OpenIn(_node.Handle);
        Exchange(40002);
        var before = ct.List().Count;
        Assert.Throws<ArgumentException>(() => ct.Delete(new ConntrackTuple(IPAddress.IPv6Loopback, ServiceIp, ProtocolType.Udp, 1, 53)));
        Assert.Throws<ArgumentException>(() => ct.Delete(new ConntrackTuple(IPAddress.Loopback, ServiceIp, ProtocolType.Icmp, 0, 0)));
        Assert.Throws<ArgumentException>(() => ct.Delete(new ConntrackTuple(IPAddress.Loopback, ServiceIp, ProtocolType.Udp, 70000, 53)));
        Assert.Equal(before, ct.List().Count);
    }

    [Fact]
    public void A_reply_without_its_tuples_is_a_clear_malformed_error()
    {
        // nfgenmsg for AF_INET and a CTA_STATUS alone.
        byte[] payload = [Libc.AF_INET, 0, 0, 0, 8, 0, (byte)Ctnl.STATUS, 0, 0, 0, 0, 8];
        var e = Assert.Throws<LinuxException>(() => CtNetlink.ParseFlow(payload));
        Assert.Contains("lacks its original tuple", e.Message, StringComparison.Ordinal);
        Assert.Throws<LinuxException>(() => CtNetlink.ParseFlow([Libc.AF_INET]));
        Assert.Null(CtNetlink.ParseFlow([Libc.AF_INET6, 0, 0, 0]));
    }

    public void Dispose()
    {
        _server?.Dispose();
        _pod.Dispose();
        _node.Dispose();
    }

    /// <summary>One datagram from the node's fixed source port to the service address, and the pod's answer.</summary>
    private void Exchange(int sourcePort)
    {
        using var client = _node.Run(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            s.Bind(new IPEndPoint(IPAddress.Any, sourcePort));
            return s;
        });
        client.SendTo("ping"u8, new IPEndPoint(ServiceIp, 53));
        var buf = new byte[16];
        EndPoint from = new IPEndPoint(IPAddress.Any, 0);
        _server.ReceiveTimeout = 3000;
        var n = _server.ReceiveFrom(buf, ref from);
        _server.SendTo(buf.AsSpan(0, n), from);
        client.ReceiveTimeout = 3000;
        Assert.Equal(4, client.Receive(buf));
    }

    private void Iptables(params string[] args)
    {
        var r = Loom.Testing.Shell.InNetns(_node.Name, ["iptables", .. args]);
        Assert.True(r.Ok, r.ToString());
    }
}
