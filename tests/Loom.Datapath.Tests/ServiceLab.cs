using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Core.Model;
using Loom.Datapath.Services;
using Loom.Linux;
using Loom.Testing;

namespace Loom.Datapath.Tests;

/// <summary>
/// A node namespace (where the backend under test programs its rules and the client runs) and N pod namespaces,
/// pod i at 10.244.i.2 behind a veth whose node end is 10.244.i.1. Every pod answers TCP and UDP with its own name
/// ("pod1", ...) from an in-process socket created inside its namespace. The service CIDR is routed to a device of its own
/// so a connect to a ClusterIP leaves the client and meets the nat OUTPUT hook. Nothing is created outside these namespaces.
/// </summary>
internal sealed class ServiceLab : IDisposable
{
    private readonly List<TestNetns> _pods = [];
    private readonly List<IDisposable> _servers = [];
    private readonly CancellationTokenSource _stop = new();

    public ServiceLab(int pods, params int[] ports)
    {
        Node = new TestNetns("svc");
        try
        {
            var nl = Node.Netlink;
            nl.LinkSetUp(nl.LinkByName("lo")!.Index);
            // A veth pair kept inside the node stands in for a dummy device (the dummy module may be missing).
            var dummy = nl.LinkAdd(new VethSpec("svc0", "svc0p"));
            nl.LinkSetUp(nl.LinkByName("svc0p")!.Index);
            nl.AddrAdd(dummy.Index, IPAddress.Parse("192.168.50.1"), 24);
            nl.LinkSetUp(dummy.Index);
            nl.RouteAdd(new Route(IPNetwork.Parse("10.96.0.0/12")) { OutputIndex = dummy.Index });
            for (var i = 1; i <= pods; i++)
            {
                var pod = new TestNetns($"pod{i}");
                _pods.Add(pod);
                var veth = nl.LinkAdd(new VethSpec($"veth{i}", "eth0") { PeerNetNs = pod.Handle });
                nl.AddrAdd(veth.Index, IPAddress.Parse($"10.244.{i}.1"), 24);
                nl.LinkSetUp(veth.Index);
                var pnl = pod.Netlink;
                pnl.LinkSetUp(pnl.LinkByName("lo")!.Index);
                var eth0 = pnl.LinkByName("eth0")!;
                pnl.AddrAdd(eth0.Index, PodIp(i), 24);
                pnl.LinkSetUp(eth0.Index);
                pnl.RouteAdd(new Route(IPNetwork.Parse("0.0.0.0/0")) { Gateway = IPAddress.Parse($"10.244.{i}.1") });
                foreach (var port in ports)
                {
                    Serve(pod, $"pod{i}", port);
                }
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

    /// <summary>Runs a backend operation where the agent would: on a thread inside the node namespace.</summary>
    public void InNode(Action action) => Node.Run(action);

    public T InNode<T>(Func<T> func) => Node.Run(func);

    /// <summary>A TCP connect from the node to ip:port; returns the pod's answer, or throws SocketException.</summary>
    public string Tcp(IPAddress ip, int port, int timeoutMs = 3000)
    {
        using var s = Node.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        using var cts = new CancellationTokenSource(timeoutMs);
        try
        {
            s.ConnectAsync(new IPEndPoint(ip, port), cts.Token).AsTask().GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"connect to {ip}:{port} timed out");
        }

        var buf = new byte[64];
        var n = s.Receive(buf);
        return Encoding.ASCII.GetString(buf, 0, n);
    }

    /// <summary>A UDP datagram from the node to ip:port; returns the answer or null after the timeout.</summary>
    public string? Udp(IPAddress ip, int port, int timeoutMs = 2000)
    {
        using var s = Node.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
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

    /// <summary>The answers of <paramref name="n"/> fresh TCP connections (distinct source ports, so fresh conntrack entries).</summary>
    public IReadOnlyList<string> TcpMany(IPAddress ip, int port, int n) => Enumerable.Range(0, n).Select(_ => Tcp(ip, port)).ToList();

    /// <summary>How a TCP connect ends: "refused", "timeout" or the answer; and how long it took.</summary>
    public (string Outcome, TimeSpan Elapsed) TcpOutcome(IPAddress ip, int port, int timeoutMs = 3000)
    {
        var sw = Stopwatch.StartNew();
        try
        {
            return (Tcp(ip, port, timeoutMs), sw.Elapsed);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return ("refused", sw.Elapsed);
        }
        catch (TimeoutException)
        {
            return ("timeout", sw.Elapsed);
        }
    }

    public static ServicePortState Service(string name, string clusterIp, int port, int[] pods, Protocol protocol = Protocol.Tcp, SessionAffinity affinity = SessionAffinity.None) =>
        new(
            new ServicePortName("default", name, null),
            new Frontend(IPAddress.Parse(clusterIp), protocol, port),
            affinity,
            10800,
            pods.Select(i => new Backend(PodIp(i), port)).ToArray());

    public string Shell(params string[] command)
    {
        var r = Loom.Testing.Shell.InNetns(Node.Name, command);
        return r.Ok ? r.Stdout : throw new InvalidOperationException(r.ToString());
    }

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

    private void Serve(TestNetns pod, string answer, int port)
    {
        var reply = Encoding.ASCII.GetBytes(answer);
        var tcp = pod.Run(() =>
        {
            var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            l.Bind(new IPEndPoint(IPAddress.Any, port));
            l.Listen(64);
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
                try
                {
                    using var c = await tcp.AcceptAsync(token);
                    await c.SendAsync(reply, token);
                    c.Shutdown(SocketShutdown.Both);
                }
                catch (Exception) when (token.IsCancellationRequested)
                {
                    return;
                }
                catch (SocketException)
                {
                    // a client that went away; keep serving
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
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
}
