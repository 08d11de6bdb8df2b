using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Loom.Linux;

namespace Loom.Bench.Datapath;

/// <summary>
/// The latency probe: one TCP connection (TCP_NODELAY), one byte sent, the same byte echoed back, timed per round
/// trip. The server's listening socket is created on a thread inside the receiving namespace, the client's inside the
/// sending one; no process is spawned. Both ends run in this process, so its own cost (a few microseconds per round
/// trip) is in every figure alike, underlay included.
/// </summary>
internal sealed class PingPongServer : IDisposable
{
    public const int Port = 7100;

    private readonly Socket listener;
    private readonly List<Socket> connections = [];
    private volatile bool stopped;

    private PingPongServer(Socket listener)
    {
        this.listener = listener;
        new Thread(AcceptLoop) { IsBackground = true, Name = "pingpong-accept" }.Start();
    }

    public static PingPongServer Start(string netns)
    {
        using var ns = NetNs.Open(netns);
        var socket = NetNs.Run(ns, () =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            s.Bind(new IPEndPoint(IPAddress.Any, Port));
            s.Listen(16);
            return s;
        });
        return new PingPongServer(socket);
    }

    private void AcceptLoop()
    {
        while (!stopped)
        {
            Socket conn;
            try
            {
                conn = listener.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }

            conn.NoDelay = true;
            lock (connections)
            {
                connections.Add(conn);
            }

            new Thread(() => Echo(conn)) { IsBackground = true, Name = "pingpong-echo" }.Start();
        }
    }

    private static void Echo(Socket conn)
    {
        var b = new byte[1];
        try
        {
            while (conn.Receive(b) == 1)
            {
                conn.Send(b);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // the client went away or the server is stopping
        }
    }

    public void Dispose()
    {
        stopped = true;
        listener.Dispose();
        lock (connections)
        {
            foreach (var c in connections)
            {
                c.Dispose();
            }
        }
    }
}

internal static class PingPong
{
    private const int Warmup = 200;
    private const int MaxSamples = 2_000_000;

    /// <summary>Connects from <paramref name="netns"/> and makes one round trip; the error, or null when it worked.</summary>
    public static string? TryOnce(string netns, IPEndPoint target)
    {
        try
        {
            using var s = Connect(netns, target);
            RoundTrip(s, new byte[1]);
            return null;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or TimeoutException)
        {
            return e is OperationCanceledException ? "connect timed out" : e.Message;
        }
    }

    /// <summary>Round-trip times in microseconds over <paramref name="duration"/> (after an untimed warm-up).</summary>
    public static List<double> Measure(string netns, IPEndPoint target, TimeSpan duration)
    {
        using var s = Connect(netns, target);
        var b = new byte[1];
        for (var i = 0; i < Warmup; i++)
        {
            RoundTrip(s, b);
        }

        var samples = new List<double>(100_000);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < duration && samples.Count < MaxSamples)
        {
            var t0 = Stopwatch.GetTimestamp();
            RoundTrip(s, b);
            samples.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
        }

        return samples;
    }

    private static Socket Connect(string netns, IPEndPoint target)
    {
        using var ns = NetNs.Open(netns);
        var s = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        try
        {
            s.NoDelay = true;
            s.ReceiveTimeout = 5000;
            s.SendTimeout = 5000;
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            s.ConnectAsync(target, cts.Token).AsTask().GetAwaiter().GetResult();
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    private static void RoundTrip(Socket s, byte[] b)
    {
        if (s.Send(b) != 1 || s.Receive(b) != 1)
        {
            throw new SocketException((int)SocketError.ConnectionReset);
        }
    }
}
