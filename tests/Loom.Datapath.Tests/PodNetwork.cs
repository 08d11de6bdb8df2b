using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Core.Model;
using Loom.Datapath.Services;
using Loom.Linux;
using Loom.Testing;

namespace Loom.Datapath.Tests;

/// <summary>
/// What <see cref="ServiceLab"/> and the eBPF lab share: a node namespace, pod namespaces each joined to it by a veth
/// (veth{i} on the node, eth0 in the pod), and in-process TCP and UDP servers inside the pods, all torn down on Dispose.
/// Nothing is created outside these namespaces.
/// </summary>
internal sealed class PodNetwork : IDisposable
{
    private readonly List<TestNetns> _pods = [];
    private readonly List<IDisposable> _servers = [];
    private readonly CancellationTokenSource _stop = new();

    public PodNetwork(string nodeTag)
    {
        Node = new TestNetns(nodeTag);
        try
        {
            Node.Netlink.LinkSetUp(Node.Netlink.LinkByName("lo")!.Index);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public TestNetns Node { get; }

    /// <summary>Pod i (1-based).</summary>
    public TestNetns Pod(int i) => _pods[i - 1];

    /// <summary>
    /// Pod namespace number <c>Pods.Count + 1</c>: veth{i} on the node, which takes <paramref name="gateway"/>/24 or, with
    /// <paramref name="bridgeIndex"/>, becomes a port of that bridge; eth0 in the pod with <paramref name="ip"/>/24 and a
    /// default route via <paramref name="gateway"/>. Returns the node-side veth's ifindex.
    /// </summary>
    public int AddPod(IPAddress ip, IPAddress gateway, int? bridgeIndex = null)
    {
        var i = _pods.Count + 1;
        var pod = new TestNetns($"pod{i}");
        _pods.Add(pod);
        var nl = Node.Netlink;
        var veth = nl.LinkAdd(new VethSpec($"veth{i}", "eth0") { PeerNetNs = pod.Handle });
        if (bridgeIndex is { } bridge)
        {
            nl.LinkSetMaster(veth.Index, bridge);
        }
        else
        {
            nl.AddrAdd(veth.Index, gateway, 24);
        }

        nl.LinkSetUp(veth.Index);
        var pnl = pod.Netlink;
        pnl.LinkSetUp(pnl.LinkByName("lo")!.Index);
        var eth0 = pnl.LinkByName("eth0")!;
        pnl.AddrAdd(eth0.Index, ip, 24);
        pnl.LinkSetUp(eth0.Index);
        pnl.RouteAdd(new Route(IPNetwork.Parse("0.0.0.0/0")) { Gateway = gateway });
        return veth.Index;
    }

    /// <summary>
    /// Pod i answers on <paramref name="port"/>: every TCP connection gets <paramref name="greeting"/>, then either an echo
    /// of what it sends until it closes (<paramref name="echo"/>) or a shutdown; every UDP datagram gets the greeting.
    /// </summary>
    public void Serve(int i, int port, string greeting, bool echo)
    {
        var pod = Pod(i);
        var reply = Encoding.ASCII.GetBytes(greeting);
        var tcp = pod.Run(() =>
        {
            var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            l.Bind(new IPEndPoint(IPAddress.Any, port));
            l.Listen(128);
            return l;
        });
        var udp = pod.Run(() =>
        {
            var u = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            u.Bind(new IPEndPoint(IPAddress.Any, port));
            return u;
        });
        _servers.Add(tcp);
        _servers.Add(udp);
        var token = _stop.Token;
        _ = Task.Run(async () =>
        {
            while (!token.IsCancellationRequested)
            {
                Socket c;
                try
                {
                    c = await tcp.AcceptAsync(token);
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
                    continue;
                }

                _ = Task.Run(() => Answer(c, reply, echo, token), token);
            }
        }, token);
        _ = Task.Run(async () =>
        {
            var buf = new byte[64];
            EndPoint any = new IPEndPoint(IPAddress.Any, 0);
            while (!token.IsCancellationRequested)
            {
                try
                {
                    var r = await udp.ReceiveFromAsync(buf, any, token);
                    await udp.SendToAsync(reply, r.RemoteEndPoint, token);
                }
                catch (Exception) when (token.IsCancellationRequested)
                {
                    return;
                }
                catch (SocketException)
                {
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
            }
        }, token);
    }

    /// <summary>A TCP connect from a namespace with a deadline: a connect that does not finish in time throws TimeoutException.</summary>
    public static Socket Connect(TestNetns from, IPAddress ip, int port, int timeoutMs)
    {
        var s = from.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        try
        {
            using var cts = new CancellationTokenSource(timeoutMs);
            try
            {
                s.ConnectAsync(new IPEndPoint(ip, port), cts.Token).AsTask().GetAwaiter().GetResult();
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"connect to {ip}:{port} timed out");
            }

            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>A UDP datagram from a namespace to ip:port over a connected socket; the answer, or null after the timeout.</summary>
    public static string? Udp(TestNetns from, IPAddress ip, int port, int timeoutMs)
    {
        using var s = from.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        s.ReceiveTimeout = timeoutMs;
        s.Connect(new IPEndPoint(ip, port));
        s.Send("ping"u8);
        var buf = new byte[64];
        try
        {
            var n = s.Receive(buf);
            return Encoding.ASCII.GetString(buf, 0, n);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
        {
            return null;
        }
    }

    /// <summary>A ClusterIP service port (default/<paramref name="name"/>) with these backends on the same port.</summary>
    public static ServicePortState Service(string name, string clusterIp, int port, IEnumerable<IPAddress> backends, Protocol protocol, SessionAffinity affinity) =>
        new(
            new ServicePortName("default", name, null),
            new Frontend(IPAddress.Parse(clusterIp), protocol, port),
            affinity,
            10800,
            backends.Select(ip => new BackendAddress(ip, port)).ToArray());

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

        Node.Dispose();
        _stop.Dispose();
    }

    private static async Task Answer(Socket c, byte[] greeting, bool echo, CancellationToken token)
    {
        using (c)
        {
            try
            {
                await c.SendAsync(greeting, token);
                if (!echo)
                {
                    c.Shutdown(SocketShutdown.Both);
                    return;
                }

                var buf = new byte[256];
                while (true)
                {
                    var n = await c.ReceiveAsync(buf, token);
                    if (n == 0)
                    {
                        break;
                    }

                    await c.SendAsync(buf.AsMemory(0, n), token);
                }
            }
            catch (Exception)
            {
                // a client that went away, or the lab stopping
            }
        }
    }
}
