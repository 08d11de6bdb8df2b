using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Linux;

namespace Loom.Lab.Tests;

/// <summary>
/// An "external" server for the masquerade checks: it listens on the lab's underlay router address, inside the lab's
/// underlay namespace (never outside the lab). Over TCP and UDP it answers every request with the source address it
/// saw, so a test sees whether a pod's traffic left its node masqueraded (the node's IP) or not (the pod's own IP).
/// </summary>
public sealed class ExternalServer : IAsyncDisposable
{
    private readonly Socket _tcp;
    private readonly Socket _udp;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _tcpLoop;
    private readonly Task _udpLoop;
    private readonly string _underlay;

    private ExternalServer(string underlay, int port)
    {
        _underlay = underlay;
        Endpoint = new IPEndPoint(IPAddress.Parse(Lab.UnderlayRouter), port);
        using var ns = NetNs.Open(underlay);
        _tcp = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        _udp = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        _tcp.Bind(Endpoint);
        _tcp.Listen(64);
        _udp.Bind(Endpoint);
        _tcpLoop = ServeTcpAsync(_stop.Token);
        _udpLoop = ServeUdpAsync(_stop.Token);
    }

    public IPEndPoint Endpoint { get; }

    /// <summary>Every source address seen, TCP and UDP.</summary>
    public ConcurrentBag<IPAddress> Seen { get; } = [];

    /// <summary>Starts the server in the lab's underlay namespace on <see cref="Lab.UnderlayRouter"/>:<paramref name="port"/>.</summary>
    public static ExternalServer Start(LabState state, int port = 7000)
    {
        ArgumentNullException.ThrowIfNull(state);
        return new ExternalServer(state.UnderlayNetns, port);
    }

    /// <summary>
    /// The underlay's way back to a pod that is not masqueraded: a /32 via its node, as a router on a natively routed
    /// network learns the pods' blocks. In the lab's underlay namespace only; it goes with the lab.
    /// </summary>
    public void RouteBackTo(LabState state, LabPod pod)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(pod);
        using var ns = NetNs.Open(_underlay);
        using var nl = Netlink.OpenIn(ns);
        var bridge = nl.LinkByName(Lab.UnderlayBridge) ?? throw new InvalidOperationException($"{Lab.UnderlayBridge} missing in {_underlay}");
        nl.RouteAdd(new Route(new IPNetwork(PodIp(pod), 32)) { Gateway = IPAddress.Parse(state.Node(pod.Node).Ip), OutputIndex = bridge.Index });
    }

    /// <summary>From inside <paramref name="ns"/>: the source address the server saw on a TCP connection.</summary>
    public async Task<string> AskTcpAsync(NetNsHandle ns)
    {
        using var s = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await s.ConnectAsync(Endpoint, timeout.Token);
        var buf = new byte[64];
        var n = await s.ReceiveAsync(buf, timeout.Token);
        return Encoding.ASCII.GetString(buf, 0, n);
    }

    /// <summary>From inside <paramref name="ns"/>: the source address the server saw on a UDP datagram (retried for 5 s).</summary>
    public async Task<string> AskUdpAsync(NetNsHandle ns)
    {
        using var s = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        await s.ConnectAsync(Endpoint);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (true)
        {
            await s.SendAsync(Encoding.ASCII.GetBytes("who am i"));
            using var wait = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
            try
            {
                var buf = new byte[64];
                var n = await s.ReceiveAsync(buf, wait.Token);
                return Encoding.ASCII.GetString(buf, 0, n);
            }
            catch (OperationCanceledException) when (DateTime.UtcNow < deadline)
            {
                // lost or not answered yet: ask again
            }
        }
    }

    internal static IPAddress PodIp(LabPod pod) => IPAddress.Parse(pod.Ip!.Split('/')[0]);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _tcp.Dispose();
        _udp.Dispose();
        await Task.WhenAll(_tcpLoop, _udpLoop).ContinueWith(_ => { }, TaskScheduler.Default);
        _stop.Dispose();
    }

    private async Task ServeTcpAsync(CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                using var conn = await _tcp.AcceptAsync(ct);
                var source = ((IPEndPoint)conn.RemoteEndPoint!).Address;
                Seen.Add(source);
                await conn.SendAsync(Encoding.ASCII.GetBytes(source.ToString()), ct);
                conn.Shutdown(SocketShutdown.Both);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // stopped
        }
    }

    private async Task ServeUdpAsync(CancellationToken ct)
    {
        try
        {
            var buf = new byte[64];
            while (!ct.IsCancellationRequested)
            {
                var r = await _udp.ReceiveFromAsync(buf, new IPEndPoint(IPAddress.Any, 0), ct);
                var source = ((IPEndPoint)r.RemoteEndPoint).Address;
                Seen.Add(source);
                await _udp.SendToAsync(Encoding.ASCII.GetBytes(source.ToString()), r.RemoteEndPoint, ct);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // stopped
        }
    }
}
