using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Core.Model;
using Loom.Datapath.Services;
using Loom.Linux;
using Loom.Testing;

namespace Loom.Agent.Tests;

/// <summary>
/// A node namespace and two pod namespaces (pod i at 10.244.i.2 behind veth{i}, node end 10.244.i.1) whose UDP servers
/// answer every datagram with their name ("pod1", "pod2"). The service CIDR is routed to a veth kept inside the node so
/// a datagram to a ClusterIP meets the nat OUTPUT hook. Nothing is created outside these namespaces; all go on Dispose.
/// </summary>
internal sealed class UdpServiceLab : IDisposable
{
    public const int PodPort = 5353;
    private readonly List<TestNetns> _pods = [];
    private readonly List<Socket> _servers = [];
    private readonly CancellationTokenSource _stop = new();

    public UdpServiceLab()
    {
        Node = new TestNetns("ctnode");
        try
        {
            var nl = Node.Netlink;
            nl.LinkSetUp(nl.LinkByName("lo")!.Index);
            var svc = nl.LinkAdd(new VethSpec("svc0", "svc0p"));
            nl.LinkSetUp(nl.LinkByName("svc0p")!.Index);
            nl.AddrAdd(svc.Index, IPAddress.Parse("192.168.50.1"), 24);
            nl.LinkSetUp(svc.Index);
            nl.RouteAdd(new Route(IPNetwork.Parse("10.96.0.0/12")) { OutputIndex = svc.Index });
            for (var i = 1; i <= 2; i++)
            {
                AddPod(i);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public TestNetns Node { get; }

    public static IPAddress PodIp(int i) => IPAddress.Parse($"10.244.{i}.2");

    public static BackendAddress Backend(int i) => new(PodIp(i), PodPort);

    public static ServicePortState Udp(string clusterIp, int port, params int[] pods) => new(
        new ServicePortName("default", "dns", "dns"), new Frontend(IPAddress.Parse(clusterIp), Protocol.Udp, port),
        SessionAffinity.None, 0, [.. pods.Select(Backend)]);

    /// <summary>A UDP socket in the node bound to <paramref name="sourcePort"/>: one client whose conntrack tuple never changes.</summary>
    public Socket Client(int sourcePort) => Node.Run(() =>
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(IPAddress.Any, sourcePort));
        return s;
    });

    public void Dispose()
    {
        _stop.Cancel();
        foreach (var s in _servers)
        {
            s.Dispose();
        }

        foreach (var p in _pods)
        {
            p.Dispose();
        }

        Node?.Dispose();
        _stop.Dispose();
    }

    private void AddPod(int i)
    {
        var pod = new TestNetns($"ctpod{i}");
        _pods.Add(pod);
        var nl = Node.Netlink;
        var veth = nl.LinkAdd(new VethSpec($"veth{i}", "eth0") { PeerNetNs = pod.Handle });
        nl.AddrAdd(veth.Index, IPAddress.Parse($"10.244.{i}.1"), 24);
        nl.LinkSetUp(veth.Index);
        var pnl = pod.Netlink;
        pnl.LinkSetUp(pnl.LinkByName("lo")!.Index);
        var eth0 = pnl.LinkByName("eth0")!;
        pnl.AddrAdd(eth0.Index, PodIp(i), 24);
        pnl.LinkSetUp(eth0.Index);
        pnl.RouteAdd(new Route(IPNetwork.Parse("0.0.0.0/0")) { Gateway = IPAddress.Parse($"10.244.{i}.1") });
        var server = pod.Run(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            s.Bind(new IPEndPoint(IPAddress.Any, PodPort));
            return s;
        });
        _servers.Add(server);
        var reply = Encoding.ASCII.GetBytes($"pod{i}");
        var token = _stop.Token;
        _ = Task.Run(async () =>
        {
            var buf = new byte[64];
            while (!token.IsCancellationRequested)
            {
                try
                {
                    var r = await server.ReceiveFromAsync(buf, new IPEndPoint(IPAddress.Any, 0), token);
                    await server.SendToAsync(reply, r.RemoteEndPoint, token);
                }
                catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
                {
                    return;
                }
                catch (SocketException)
                {
                }
            }
        }, token);
    }
}
