using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Core.Model;
using Loom.Datapath.Services;
using Loom.Linux;
using Loom.Testing;

namespace Loom.Datapath.Tests;

/// <summary>
/// A client outside the cluster, a node and pods behind it: the client namespace (192.168.10.1) reaches the node
/// namespace on its underlay address 192.168.10.11 over a veth; pod i (10.244.i.2) hangs off the node as in
/// <see cref="ServiceLab"/>. Every pod answers a TCP connection on <see cref="Port"/> with "pod{i} from {source}",
/// the source address it saw. The node forwards; nothing is created outside these namespaces.
/// </summary>
internal sealed class NodePortLab : IDisposable
{
    public const int Port = 8080;
    public static readonly IPAddress ClientIp = IPAddress.Parse("192.168.10.1");
    public static readonly IPAddress NodeIp = IPAddress.Parse("192.168.10.11");

    private readonly PodNetwork _net;
    private readonly TestNetns _client;
    private readonly List<Socket> _listeners = [];
    private readonly CancellationTokenSource _stop = new();

    public NodePortLab(int pods)
    {
        _net = new PodNetwork("np");
        _client = new TestNetns("npc");
        try
        {
            var nl = Node.Netlink;
            var ext = nl.LinkAdd(new VethSpec("ext0", "eth0") { PeerNetNs = _client.Handle });
            nl.AddrAdd(ext.Index, NodeIp, 24);
            nl.LinkSetUp(ext.Index);
            Node.Run(() => Sysctl.Set("net.ipv4.ip_forward", "1"));
            var cnl = _client.Netlink;
            cnl.LinkSetUp(cnl.LinkByName("lo")!.Index);
            var eth0 = cnl.LinkByName("eth0")!;
            cnl.AddrAdd(eth0.Index, ClientIp, 24);
            cnl.LinkSetUp(eth0.Index);
            cnl.RouteAdd(new Route(IPNetwork.Parse("0.0.0.0/0")) { Gateway = NodeIp });
            for (var i = 1; i <= pods; i++)
            {
                _net.AddPod(PodIp(i), IPAddress.Parse($"10.244.{i}.1"));
                ServeSource(i);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public TestNetns Node => _net.Node;

    public static IPAddress PodIp(int i) => IPAddress.Parse($"10.244.{i}.2");

    /// <summary>The node's address on pod i's veth: what a masqueraded packet to pod i carries as source.</summary>
    public static IPAddress NodeIpTowards(int i) => IPAddress.Parse($"10.244.{i}.1");

    /// <summary>A node-port service port default/{name} (TCP, target <see cref="Port"/>); pods listed in <paramref name="local"/> are on this node.</summary>
    public static ServicePortState NodePortService(string name, string clusterIp, int nodePort, int[] pods, int[] local, TrafficPolicy externalPolicy) =>
        new ServicePortState(
            new ServicePortName("default", name, null),
            new Frontend(IPAddress.Parse(clusterIp), Protocol.Tcp, 80),
            SessionAffinity.None,
            10800,
            pods.Select(i => new BackendAddress(PodIp(i), Port) { IsLocal = local.Contains(i) }).ToArray())
        {
            Type = ServiceType.NodePort,
            NodePort = nodePort,
            ExternalTrafficPolicy = externalPolicy,
        };

    public void InNode(Action action) => Node.Run(action);

    /// <summary>A TCP connect from the client to ip:port; the pod's answer, or "timeout" / "refused".</summary>
    public string FromClient(IPAddress ip, int port, int timeoutMs = 2000)
    {
        try
        {
            using var s = PodNetwork.Connect(_client, ip, port, timeoutMs);
            var buf = new byte[128];
            var n = s.Receive(buf);
            return Encoding.ASCII.GetString(buf, 0, n);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return "refused";
        }
        catch (TimeoutException)
        {
            return "timeout";
        }
    }

    public string Shell(params string[] command)
    {
        var r = Loom.Testing.Shell.InNetns(Node.Name, command);
        return r.Ok ? r.Stdout : throw new InvalidOperationException(r.ToString());
    }

    public void Dispose()
    {
        _stop.Cancel();
        foreach (var l in _listeners)
        {
            l.Dispose();
        }

        _net.Dispose();
        _client.Dispose();
        _stop.Dispose();
    }

    // Pod i answers each connection with its name and the source address the connection came from.
    private void ServeSource(int i)
    {
        var listener = _net.Pod(i).Run(() =>
        {
            var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            l.Bind(new IPEndPoint(IPAddress.Any, Port));
            l.Listen(64);
            return l;
        });
        _listeners.Add(listener);
        var token = _stop.Token;
        _ = Task.Run(async () =>
        {
            while (!token.IsCancellationRequested)
            {
                try
                {
                    using var c = await listener.AcceptAsync(token);
                    var from = ((IPEndPoint)c.RemoteEndPoint!).Address;
                    await c.SendAsync(Encoding.ASCII.GetBytes($"pod{i} from {from}"), token);
                    c.Shutdown(SocketShutdown.Both);
                }
                catch (Exception) when (token.IsCancellationRequested)
                {
                    return;
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
                catch (SocketException)
                {
                    // a client that went away
                }
            }
        }, token);
    }
}
