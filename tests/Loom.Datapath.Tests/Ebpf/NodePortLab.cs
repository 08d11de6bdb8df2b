using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Core.Model;
using Loom.Datapath.Services;
using Loom.Datapath.Services.Ebpf;
using Loom.Linux;
using Loom.Testing;

namespace Loom.Datapath.Tests.Ebpf;

/// <summary>
/// Two nodes and an outside client on an underlay, all in namespaces of this run. The client namespace holds the underlay
/// bridge br0 with the router's address 192.168.10.1 (as the lab's); the node under test (an <see cref="EbpfLab"/>, pod 1
/// a backend, pod 2 a client pod) has eth1 192.168.10.11 on it, the remote node eth1 192.168.10.12 with its pod
/// 10.244.9.2 behind a veth, routed from the node. Every backend answers TCP and UDP with "name source-address", so a test
/// sees who answered and whom it saw.
/// </summary>
internal sealed class NodePortLab : IDisposable
{
    public const int Port = 8080;
    public static readonly IPAddress NodeIp = IPAddress.Parse("192.168.10.11");
    public static readonly IPAddress RemoteNodeIp = IPAddress.Parse("192.168.10.12");
    public static readonly IPAddress ClientIp = IPAddress.Parse("192.168.10.1");
    public static readonly IPAddress RemotePodIp = IPAddress.Parse("10.244.9.2");

    private readonly List<IDisposable> _owned = [];
    private readonly CancellationTokenSource _stop = new();

    public NodePortLab(bool bridge)
    {
        Lab = new EbpfLab(bridge, 2);
        _owned.Add(Lab);
        try
        {
            Client = Own(new TestNetns("npclient"));
            Remote = Own(new PodNetwork("rnode"));
            var cnl = Client.Netlink;
            cnl.LinkSetUp(cnl.LinkByName("lo")!.Index);
            var br = cnl.LinkAdd(new BridgeSpec("br0")).Index;
            cnl.AddrAdd(br, ClientIp, 24);
            cnl.LinkSetUp(br);
            Underlay(Lab.Node, "to-node", NodeIp, br);
            Underlay(Remote.Node, "to-remote", RemoteNodeIp, br);
            Lab.Node.Netlink.RouteAdd(new Route(IPNetwork.Parse("10.244.9.0/24")) { Gateway = RemoteNodeIp });
            Sysctl(Remote.Node, "net.ipv4.ip_forward=1");
            Remote.AddPod(RemotePodIp, IPAddress.Parse("10.244.9.1"));
            // The node's pods, as the cluster's pod routes have them (routed 10.244.i.0/24, bridge 10.244.0.0/24).
            Remote.Node.Netlink.RouteAdd(new Route(IPNetwork.Parse("10.244.0.0/20")) { Gateway = NodeIp });
            Serve(Lab.Pod(1), "local");
            Serve(Remote.Pod(1), "remote");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public EbpfLab Lab { get; }

    public TestNetns Client { get; }

    public PodNetwork Remote { get; }

    public BackendAddress Local => new(Lab.PodIp(1), Port) { IsLocal = true };

    public static BackendAddress RemoteBackend => new(RemotePodIp, Port);

    public EbpfServiceBackend NewBackend(string? cgroup = null) => new(new EbpfServiceOptions
    {
        PinDirectory = Lab.PinDirectory,
        ObjectDirectory = EbpfLab.ObjectDirectory,
        Interfaces = () => Lab.HostIfindexes,
        NodePortInterface = "eth1",
        CgroupPath = cgroup,
        Proxy = new ServiceProxyOptions { NodeIps = [NodeIp] },
    });

    /// <summary>A NodePort service (ClusterIP 10.96.0.50:80, node port 30080) over these backends.</summary>
    public static ServicePortState Service(TrafficPolicy external, Protocol protocol, params BackendAddress[] backends) =>
        new(new ServicePortName("default", "np", null), new Frontend(IPAddress.Parse("10.96.0.50"), protocol, 80), SessionAffinity.None, 10800, backends)
        {
            Type = ServiceType.NodePort,
            NodePort = 30080,
            ExternalTrafficPolicy = external,
        };

    /// <summary>One TCP connection from <paramref name="from"/>: the backend's line, or "timeout" / the socket error.</summary>
    public static string Tcp(TestNetns from, IPAddress ip, int port, int timeoutMs = 2000)
    {
        try
        {
            using var s = PodNetwork.Connect(from, ip, port, timeoutMs);
            s.ReceiveTimeout = timeoutMs;
            var sb = new StringBuilder();
            var buf = new byte[1];
            while (s.Receive(buf) == 1 && buf[0] != (byte)'\n')
            {
                sb.Append((char)buf[0]);
            }

            return sb.ToString();
        }
        catch (TimeoutException)
        {
            return "timeout";
        }
        catch (SocketException e)
        {
            return e.SocketErrorCode == SocketError.TimedOut ? "timeout" : e.SocketErrorCode.ToString();
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        for (var i = _owned.Count - 1; i >= 0; i--)
        {
            _owned[i].Dispose();
        }

        _stop.Dispose();
    }

    private T Own<T>(T d)
        where T : IDisposable
    {
        _owned.Add(d);
        return d;
    }

    /// <summary>eth1 of <paramref name="node"/> with <paramref name="ip"/>/24, its peer <paramref name="port"/> a port of br0.</summary>
    private void Underlay(TestNetns node, string port, IPAddress ip, int bridge)
    {
        var cnl = Client.Netlink;
        var veth = cnl.LinkAdd(new VethSpec(port, "eth1") { PeerNetNs = node.Handle });
        cnl.LinkSetMaster(veth.Index, bridge);
        cnl.LinkSetUp(veth.Index);
        var nnl = node.Netlink;
        var eth1 = nnl.LinkByName("eth1")!.Index;
        nnl.AddrAdd(eth1, ip, 24);
        nnl.LinkSetUp(eth1);
    }

    private static void Sysctl(TestNetns ns, string setting)
    {
        var r = Shell.InNetns(ns.Name, [Shell.Require("sysctl"), "-qw", setting]);
        if (!r.Ok)
        {
            throw new InvalidOperationException(r.ToString());
        }
    }

    /// <summary>TCP and UDP servers on <see cref="Port"/> in <paramref name="ns"/> answering "name source-address".</summary>
    private void Serve(TestNetns ns, string name)
    {
        var tcp = ns.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        var udp = ns.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        _owned.Add(tcp);
        _owned.Add(udp);
        tcp.Bind(new IPEndPoint(IPAddress.Any, Port));
        tcp.Listen(64);
        udp.Bind(new IPEndPoint(IPAddress.Any, Port));
        var token = _stop.Token;
        _ = Task.Run(async () =>
        {
            while (!token.IsCancellationRequested)
            {
                try
                {
                    using var c = await tcp.AcceptAsync(token).ConfigureAwait(false);
                    var peer = ((IPEndPoint)c.RemoteEndPoint!).Address;
                    await c.SendAsync(Encoding.ASCII.GetBytes($"{name} {peer}\n"), token).ConfigureAwait(false);
                    c.Shutdown(SocketShutdown.Both);
                }
                catch (Exception) when (token.IsCancellationRequested)
                {
                    return;
                }
                catch (SocketException)
                {
                }
            }
        }, token);
        _ = Task.Run(async () =>
        {
            var buf = new byte[64];
            while (!token.IsCancellationRequested)
            {
                try
                {
                    var r = await udp.ReceiveFromAsync(buf, new IPEndPoint(IPAddress.Any, 0), token).ConfigureAwait(false);
                    var peer = (IPEndPoint)r.RemoteEndPoint;
                    await udp.SendToAsync(Encoding.ASCII.GetBytes($"{name} {peer.Address}"), peer, token).ConfigureAwait(false);
                }
                catch (Exception) when (token.IsCancellationRequested)
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
