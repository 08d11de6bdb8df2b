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
    private readonly PodNetwork _net;

    public ServiceLab(int pods, params int[] ports)
    {
        _net = new PodNetwork("svc");
        try
        {
            var nl = Node.Netlink;
            // A veth pair kept inside the node stands in for a dummy device (the dummy module may be missing).
            var dummy = nl.LinkAdd(new VethSpec("svc0", "svc0p"));
            nl.LinkSetUp(nl.LinkByName("svc0p")!.Index);
            nl.AddrAdd(dummy.Index, IPAddress.Parse("192.168.50.1"), 24);
            nl.LinkSetUp(dummy.Index);
            nl.RouteAdd(new Route(IPNetwork.Parse("10.96.0.0/12")) { OutputIndex = dummy.Index });
            for (var i = 1; i <= pods; i++)
            {
                _net.AddPod(PodIp(i), IPAddress.Parse($"10.244.{i}.1"));
                foreach (var port in ports)
                {
                    _net.Serve(i, port, $"pod{i}", echo: false);
                }
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

    /// <summary>Runs a backend operation where the agent would: on a thread inside the node namespace.</summary>
    public void InNode(Action action) => Node.Run(action);

    public T InNode<T>(Func<T> func) => Node.Run(func);

    /// <summary>A TCP connect from the node to ip:port; returns the pod's answer, or throws SocketException.</summary>
    public string Tcp(IPAddress ip, int port, int timeoutMs = 3000)
    {
        using var s = PodNetwork.Connect(Node, ip, port, timeoutMs);
        var buf = new byte[64];
        var n = s.Receive(buf);
        return Encoding.ASCII.GetString(buf, 0, n);
    }

    /// <summary>A UDP datagram from the node to ip:port; returns the answer or null after the timeout.</summary>
    public string? Udp(IPAddress ip, int port, int timeoutMs = 2000) => PodNetwork.Udp(Node, ip, port, timeoutMs);

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
        PodNetwork.Service(name, clusterIp, port, pods.Select(PodIp), protocol, affinity);

    public string Shell(params string[] command)
    {
        var r = Loom.Testing.Shell.InNetns(Node.Name, command);
        return r.Ok ? r.Stdout : throw new InvalidOperationException(r.ToString());
    }

    public void Dispose() => _net.Dispose();
}
