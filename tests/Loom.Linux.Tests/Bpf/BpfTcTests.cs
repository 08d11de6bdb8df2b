using System.Net;
using System.Net.Sockets;

using Loom.Linux.Bpf;
using Loom.Testing;

namespace Loom.Linux.Tests.Bpf;

/// <summary>
/// tc attach on a veth inside a test namespace (never the root namespace): the attach runs inside
/// NetNs.Run because libbpf's rtnetlink socket belongs to the calling thread's namespace.
/// </summary>
public class BpfTcTests
{
    [Fact]
    public void Tc_counter_on_a_veth_in_a_test_namespace_counts_real_packets_and_detaches_cleanly()
    {
        using var a = new TestNetns("tca");
        using var b = new TestNetns("tcb");
        var va = a.Netlink.LinkAdd(new VethSpec("veth0", "veth0") { PeerNetNs = b.Handle });
        var vb = b.Netlink.LinkByName("veth0")!;
        var ipA = IPAddress.Parse("10.98.1.1");
        a.Netlink.AddrAdd(va.Index, ipA, 24);
        b.Netlink.AddrAdd(vb.Index, IPAddress.Parse("10.98.1.2"), 24);
        a.Netlink.LinkSetUp(va.Index);
        b.Netlink.LinkSetUp(vb.Index);

        using var obj = BpfObject.Load(BpfTestEnv.ObjectPath("test_maps.o"));
        var prog = obj.Program("count_packets");
        var counts = obj.PerCpuMap<uint, PktCount>("pkt_counts");
        var index = (uint)va.Index;
        try
        {
            a.Run(() =>
            {
                prog.AttachTc(va.Index, TcDirection.Ingress);
                prog.AttachTc(va.Index, TcDirection.Ingress); // idempotent: replaces itself
                Assert.Equal(prog.Id, BpfTc.Query(va.Index, TcDirection.Ingress));
                Assert.Null(BpfTc.Query(va.Index, TcDirection.Egress));
            });

            using var receiver = a.Run(() =>
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                s.Bind(new IPEndPoint(ipA, 0));
                return s;
            });
            var target = (IPEndPoint)receiver.LocalEndPoint!;
            using var sender = b.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
            const int n = 20;
            var payload = new byte[100];
            for (var i = 0; i < n; i++)
            {
                sender.SendTo(payload, target);
            }

            receiver.ReceiveTimeout = 5000;
            var buf = new byte[2048];
            for (var i = 0; i < n; i++)
            {
                Assert.Equal(100, receiver.Receive(buf));
            }

            var total = Sum(counts.Lookup(index));
            // The 20 datagrams plus ARP (and possibly IPv6 noise); each datagram is 100 + 28 bytes of IP/UDP.
            Assert.InRange(total.Packets, (ulong)n, (ulong)n + 20);
            Assert.True(total.Bytes >= n * 128UL, $"bytes {total.Bytes}");
            // Nothing else is counted: no other slot of this fresh map moved.
            Assert.Equal(total, counts.Keys().Select(k => Sum(counts.Lookup(k))).Aggregate(default(PktCount), Add));

            var detached = a.Run(() => (BpfProgram.DetachTc(va.Index, TcDirection.Ingress), BpfTc.Query(va.Index, TcDirection.Ingress)));
            Assert.True(detached.Item1);
            Assert.Null(detached.Item2);
            Assert.False(a.Run(() => BpfProgram.DetachTc(va.Index, TcDirection.Ingress)));

            for (var i = 0; i < n; i++)
            {
                sender.SendTo(payload, target);
            }

            for (var i = 0; i < n; i++)
            {
                Assert.Equal(100, receiver.Receive(buf));
            }

            Assert.Equal(total.Packets, Sum(counts.Lookup(index)).Packets);
            Assert.True(a.Run(() => BpfTc.DestroyClsact(va.Index)));
        }
        finally
        {
            a.Run(() => BpfTc.DestroyClsact(va.Index));
        }
    }

    private static PktCount Sum(PktCount[] perCpu) => perCpu.Aggregate(default(PktCount), Add);

    private static PktCount Add(PktCount x, PktCount y) => new(x.Packets + y.Packets, x.Bytes + y.Bytes);
}
