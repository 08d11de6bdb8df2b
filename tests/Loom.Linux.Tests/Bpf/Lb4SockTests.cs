using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

using Loom.Linux.Bpf;
using Loom.Testing;

using TestShell = Loom.Testing.Shell;

namespace Loom.Linux.Tests.Bpf;

/// <summary>
/// bpf/lb4.o's socket-level LB (lb4_connect4) on a cgroup this test creates (never the root cgroup): a child process
/// moved into that cgroup, then released into a test namespace, connects to the fake VIP 10.96.0.99:80 and
/// reaches the real listener; a process outside the cgroup does not. The service is written straight into lb4's
/// maps (one backend), as the eBPF service backend lays it out.
/// </summary>
public class Lb4SockTests
{
    private static readonly IPEndPoint Vip = new(IPAddress.Parse("10.96.0.99"), 80);

    [Fact]
    public void Connect4_on_a_test_cgroup_rewrites_the_vip_to_the_backend_for_processes_in_that_cgroup_only()
    {
        using var ns = new TestNetns("slb");
        var lo = ns.Netlink.LinkByName("lo")!;
        ns.Netlink.LinkSetUp(lo.Index);
        var backendIp = IPAddress.Parse("10.97.0.1");
        ns.Netlink.AddrAdd(lo.Index, backendIp, 32);

        using var listener = ns.Run(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(backendIp, 0));
            s.Listen(8);
            return s;
        });
        var backend = (IPEndPoint)listener.LocalEndPoint!;
        using var cts = new CancellationTokenSource();
        var server = new Thread(() => Serve(listener, cts.Token)) { IsBackground = true };
        server.Start();

        using var cg = new TestCgroup("slb");
        using var obj = BpfObject.Load(BpfTestEnv.ObjectPath(LbMaps.ObjectFile));
        SetService(obj, Vip, ProtocolType.Tcp, backend);
        var slot = obj.Map<LbServiceKey, LbService>(LbMaps.Services).Lookup(new LbServiceKey(Vip.Address, 80, ProtocolType.Tcp, 1));
        Assert.Equal(backend, obj.Map<uint, LbBackend>(LbMaps.Backends).Lookup(slot.BackendId).EndPoint);

        var connect = obj.Program(LbMaps.Connect4);
        Assert.StartsWith(BpfTestEnv.CgroupRoot + "/" + BpfTestEnv.Base, cg.Path, StringComparison.Ordinal);
        connect.AttachCgroup(cg.Path, BpfCgroupAttachType.Inet4Connect);
        try
        {
            connect.AttachCgroup(cg.Path, BpfCgroupAttachType.Inet4Connect); // idempotent
            Assert.Equal([connect.Id], BpfProgram.QueryCgroup(cg.Path, BpfCgroupAttachType.Inet4Connect));

            var inside = CurlInCgroup(ns.Name, cg);
            Assert.True(inside.Ok, inside.ToString());
            Assert.Equal("hello from backend", inside.Stdout);
            var stats = obj.PerCpuMap<uint, ulong>(LbMaps.Stats).Lookup((uint)LbMaps.Stat.Socket).Aggregate(0UL, (x, y) => x + y);
            Assert.Equal(1UL, stats);

            // Not in the cgroup: no rewrite, and the namespace has no route to the VIP.
            var outside = TestShell.InNetns(ns.Name, Curl());
            Assert.False(outside.Ok, outside.ToString());

            Assert.True(connect.DetachCgroup(cg.Path, BpfCgroupAttachType.Inet4Connect));
            Assert.False(connect.DetachCgroup(cg.Path, BpfCgroupAttachType.Inet4Connect));
            Assert.Empty(BpfProgram.QueryCgroup(cg.Path, BpfCgroupAttachType.Inet4Connect));
            var afterDetach = CurlInCgroup(ns.Name, cg);
            Assert.False(afterDetach.Ok, afterDetach.ToString());
        }
        finally
        {
            connect.DetachCgroup(cg.Path, BpfCgroupAttachType.Inet4Connect);
            cts.Cancel();
            listener.Close();
            server.Join(TimeSpan.FromSeconds(5));
        }
    }

    [Fact]
    public void Connect4_rewrites_a_connected_udp_socket_to_the_udp_backend_only()
    {
        using var ns = new TestNetns("slbu");
        var lo = ns.Netlink.LinkByName("lo")!;
        ns.Netlink.LinkSetUp(lo.Index);
        var backendIp = IPAddress.Parse("10.97.0.2");
        ns.Netlink.AddrAdd(lo.Index, backendIp, 32);
        using var receiver = ns.Run(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 10_000 };
            s.Bind(new IPEndPoint(backendIp, 0));
            return s;
        });
        var backend = (IPEndPoint)receiver.LocalEndPoint!;

        using var cg = new TestCgroup("slbu");
        using var obj = BpfObject.Load(BpfTestEnv.ObjectPath(LbMaps.ObjectFile));
        // Only UDP is mapped: the protocol is part of the service key.
        SetService(obj, new IPEndPoint(Vip.Address, 53), ProtocolType.Udp, backend);
        var connect = obj.Program(LbMaps.Connect4);
        connect.AttachCgroup(cg.Path, BpfCgroupAttachType.Inet4Connect);
        try
        {
            // bash's /dev/udp does socket() + connect() + write().
            var bash = TestShell.Require("bash");
            var sent = RunInCgroup(ns.Name, cg, [bash, "-c", $"echo loom-udp > /dev/udp/{Vip.Address}/53"]);
            Assert.True(sent.Ok, sent.ToString());
            var buf = new byte[64];
            var n = receiver.Receive(buf);
            Assert.Equal("loom-udp\n", Encoding.ASCII.GetString(buf, 0, n));

            // TCP to the same VIP:53 has no service entry: not rewritten, and no route.
            Assert.False(RunInCgroup(ns.Name, cg, [bash, "-c", $"echo x > /dev/tcp/{Vip.Address}/53"]).Ok);
        }
        finally
        {
            connect.DetachCgroup(cg.Path, BpfCgroupAttachType.Inet4Connect);
        }
    }

    /// <summary>A service with one backend in lb4's layout: backend 1, rev-NAT 1, slot 1 and the master entry (count 1) last.</summary>
    private static void SetService(BpfObject obj, IPEndPoint vip, ProtocolType protocol, IPEndPoint backend)
    {
        const uint backendId = 1;
        const ushort revNat = 1;
        obj.Map<uint, LbBackend>(LbMaps.Backends).Update(backendId, new LbBackend(backend.Address, backend.Port, protocol));
        obj.Map<ushort, LbReverseNat>(LbMaps.ReverseNat).Update(revNat, new LbReverseNat(vip.Address, vip.Port));
        var services = obj.Map<LbServiceKey, LbService>(LbMaps.Services);
        var master = new LbServiceKey(vip.Address, vip.Port, protocol, 0);
        services.Update(master.WithSlot(1), new LbService { BackendId = backendId, RevNatIndex = revNat });
        services.Update(master, new LbService { Count = 1, RevNatIndex = revNat });
    }

    private static string[] Curl() =>
        [TestShell.Require("curl"), "-sS", "--noproxy", "*", "--connect-timeout", "3", "--max-time", "5", $"http://{Vip}/"];

    /// <summary>
    /// Starts <c>sh -c 'read x; exec nsenter ... curl'</c>, moves it into the cgroup while it waits on stdin,
    /// then releases it: the connect() happens only once the process is in the cgroup.
    /// </summary>
    private static ShellRun CurlInCgroup(string netns, TestCgroup cg) => RunInCgroup(netns, cg, Curl());

    private static ShellRun RunInCgroup(string netns, TestCgroup cg, string[] argv) => TestShell.InCgroupAndNetns(netns, cg.Path, argv);

    private static void Serve(Socket listener, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Socket conn;
            try
            {
                conn = listener.Accept();
            }
            catch (SocketException)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }

            using (conn)
            {
                conn.ReceiveTimeout = 5000;
                var buf = new byte[4096];
                var request = new StringBuilder();
                while (!request.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                {
                    var n = conn.Receive(buf);
                    if (n == 0)
                    {
                        break;
                    }

                    request.Append(Encoding.ASCII.GetString(buf, 0, n));
                }

                const string body = "hello from backend";
                conn.Send(Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture,
                    $"HTTP/1.0 200 OK\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n{body}")));
                conn.Shutdown(SocketShutdown.Both);
            }
        }
    }
}
