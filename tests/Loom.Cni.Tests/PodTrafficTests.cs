using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Loom.Cni.Tests;

/// <summary>Real packets: TCP from one pod to another through the node's bridge, and to the gateway.</summary>
public sealed class PodTrafficTests : IDisposable
{
    private readonly CniNode _node = new();

    public void Dispose() => _node.Dispose();

    [Fact]
    public async Task Tcp_between_two_pods_through_the_bridge()
    {
        var conf = _node.Conf(edit: c => c["isDefaultGateway"] = true);
        var a = _node.NewPod("pa");
        var b = _node.NewPod("pb");
        _node.Add(conf, "ta", a);
        var ipB = IPAddress.Parse(CniNode.IpOf(_node.Add(conf, "tb", b)));

        // A socket belongs to the namespace it was created in: make each inside its pod, use it from anywhere.
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
        Assert.Equal(IPAddress.Parse("10.244.7.2"), ((IPEndPoint)server.RemoteEndPoint!).Address);

        await client.SendAsync(Encoding.ASCII.GetBytes("hello from pod a"), SocketFlags.None, cts.Token);
        client.Shutdown(SocketShutdown.Send);
        var received = new MemoryStream();
        var buf = new byte[256];
        int n;
        while ((n = await server.ReceiveAsync(buf, SocketFlags.None, cts.Token)) > 0)
        {
            received.Write(buf, 0, n);
        }

        Assert.Equal("hello from pod a", Encoding.ASCII.GetString(received.ToArray()));
    }

    [Fact]
    public async Task Busybox_nc_from_pod_reaches_a_listener_on_the_gateway()
    {
        var pod = _node.NewPod();
        _node.Add(_node.Conf(), "tg", pod);
        using var listener = _node.Ns.Run(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(IPAddress.Parse("10.244.7.1"), 9090));
            s.Listen();
            return s;
        });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var accept = listener.AcceptAsync(cts.Token);
        var psi = new System.Diagnostics.ProcessStartInfo("nsenter") { RedirectStandardInput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in (string[])[$"--net={CniNode.PathOf(pod)}", "busybox", "nc", "-w", "5", "10.244.7.1", "9090"])
        {
            psi.ArgumentList.Add(arg);
        }

        using var nc = System.Diagnostics.Process.Start(psi)!;
        try
        {
            await nc.StandardInput.WriteAsync("ping from the pod");
            nc.StandardInput.Close();
            using var conn = await accept;
            var buf = new byte[64];
            var n = await conn.ReceiveAsync(buf, SocketFlags.None, cts.Token);
            Assert.Equal("ping from the pod", Encoding.ASCII.GetString(buf, 0, n));
            Assert.Equal(IPAddress.Parse("10.244.7.2"), ((IPEndPoint)conn.RemoteEndPoint!).Address);
            conn.Close(); // busybox nc exits when the peer closes
            await nc.WaitForExitAsync(cts.Token);
        }
        finally
        {
            if (!nc.HasExited)
            {
                nc.Kill();
            }
        }
    }
}
