using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Linux;
using Xunit.Abstractions;

namespace Loom.Cni.Tests;

/// <summary>Routed plumbing with real packets: pod to pod through the node's routing table, pod to the router IP.</summary>
public sealed class RoutedTrafficTests(ITestOutputHelper output) : IDisposable
{
    private readonly CniNode _node = new();

    public void Dispose() => _node.Dispose();

    [Fact]
    public async Task Tcp_between_two_pods_on_one_node_goes_through_the_hosts_routing()
    {
        _node.EnsureRouter();
        var conf = _node.RoutedConf();
        var a = _node.NewPod("ta");
        var b = _node.NewPod("tb");
        var ipA = IPAddress.Parse(CniNode.IpOf(_node.Add(conf, "ta", a)));
        var ipB = IPAddress.Parse(CniNode.IpOf(_node.Add(conf, "tb", b)));

        using var listener = b.Run(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(ipB, 8080));
            s.Listen();
            return s;
        });
        using var client = a.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var accept = listener.AcceptAsync(cts.Token).AsTask();
        await client.ConnectAsync(new IPEndPoint(ipB, 8080), cts.Token);
        using var server = await accept;
        Assert.Equal(ipA, ((IPEndPoint)server.RemoteEndPoint!).Address); // routed, not masqueraded

        await client.SendAsync(Encoding.ASCII.GetBytes("hello through the router"), SocketFlags.None, cts.Token);
        client.Shutdown(SocketShutdown.Send);
        var received = new MemoryStream();
        var buf = new byte[256];
        int n;
        while ((n = await server.ReceiveAsync(buf, SocketFlags.None, cts.Token)) > 0)
        {
            received.Write(buf, 0, n);
        }

        Assert.Equal("hello through the router", Encoding.ASCII.GetString(received.ToArray()));

        // No bridge to switch it: the node's routing table sends what comes in from a's veth out of b's.
        Assert.Null(_node.Netlink.LinkByName("cni0"));
        var decision = Tool.Run("ip", "-n", _node.Ns.Name, "route", "get", ipB.ToString(), "from", ipA.ToString(), "iif", CniNode.HostVethName("ta"));
        output.WriteLine(decision);
        Assert.Contains($"dev {CniNode.HostVethName("tb")}", decision, StringComparison.Ordinal);
    }

    [Fact]
    public void A_pod_pings_the_router_ip_and_the_node_does_not_without_the_router_device()
    {
        _node.EnsureRouter();
        var pod = _node.NewPod("tp");
        _node.Add(_node.RoutedConf(), "tp", pod);
        var (code, stdout, stderr) = Tool.RunWithCode("ip", "netns", "exec", pod.Name, "ping", "-c", "2", "-W", "2", "10.244.7.1");
        Assert.True(code == 0, stdout + stderr);

        // The reply comes from loom_host's address: take the device away and the same ping fails.
        RouterDevice.Delete(_node.Netlink);
        (code, stdout, stderr) = Tool.RunWithCode("ip", "netns", "exec", pod.Name, "ping", "-c", "1", "-W", "1", "10.244.7.1");
        Assert.True(code != 0, stdout + stderr);
    }
}
