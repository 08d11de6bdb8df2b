using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Linux;

namespace Loom.Lab.Tests;

/// <summary>Counts of one probe: requests answered, requests lost, and when each loss happened.</summary>
internal sealed class ProbeCounts
{
    private readonly Lock _gate = new();
    private readonly List<string> _errors = [];
    private int _ok;
    private int _failed;

    public int Ok => Volatile.Read(ref _ok);

    public int Failed => Volatile.Read(ref _failed);

    public IReadOnlyList<string> Errors
    {
        get
        {
            lock (_gate)
            {
                return [.. _errors];
            }
        }
    }

    public void Answered() => Interlocked.Increment(ref _ok);

    public void Lost(string why)
    {
        Interlocked.Increment(ref _failed);
        lock (_gate)
        {
            _errors.Add($"{DateTime.UtcNow:HH:mm:ss.fff} {why}");
        }
    }
}

/// <summary>
/// The probes a live migration runs under: HTTP requests to a ClusterIP every 100 ms from a pod (through the pod's
/// veth: iptables DNAT, then the eBPF tc program) and from a node's host namespace (curl in the node's cgroup, so the
/// eBPF socket LB covers it as it covers the node's processes), and one TCP connection through a ClusterIP that
/// exchanges a line every 100 ms for the whole run.
/// </summary>
internal static class FinalizeProbes
{
    private static readonly TimeSpan Every = TimeSpan.FromMilliseconds(100);

    // A request is lost only if it never completes: a SYN retransmitted on a busy 2-core machine is not a loss.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);

    /// <summary>GET / on <paramref name="target"/> from inside <paramref name="ns"/> every 100 ms until cancelled.</summary>
    public static async Task HttpFromNamespaceAsync(NetNsHandle ns, IPEndPoint target, ProbeCounts counts, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            var stage = "connect";
            try
            {
                using var s = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
                using var timeout = new CancellationTokenSource(Patience);
                await s.ConnectAsync(target, timeout.Token);
                stage = $"request (local port {((IPEndPoint)s.LocalEndPoint!).Port})";
                await s.SendAsync(Encoding.ASCII.GetBytes($"GET / HTTP/1.1\r\nHost: {target.Address}\r\nConnection: close\r\n\r\n"), timeout.Token);
                var reply = new StringBuilder();
                var buf = new byte[4096];
                int n;
                while ((n = await s.ReceiveAsync(buf, timeout.Token)) > 0)
                {
                    reply.Append(Encoding.ASCII.GetString(buf, 0, n));
                }

                if (reply.ToString().StartsWith("HTTP/1.1 200", StringComparison.Ordinal))
                {
                    counts.Answered();
                }
                else
                {
                    counts.Lost($"{stage}: answer {reply.ToString().Split('\n')[0]}");
                }
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                counts.Lost($"{stage}: {e.Message}");
            }

            await Task.Delay(Every, CancellationToken.None);
        }
    }

    /// <summary>
    /// Starts curl against <paramref name="target"/> every 100 ms in the node's namespace and cgroup; each request
    /// writes one line ("HH:MM:SS.mmm CODE") to <paramref name="log"/>. Stops once <paramref name="stopFile"/> exists.
    /// </summary>
    public static int StartHostCurl(LabState state, string node, IPEndPoint target, string log, string stopFile)
    {
        var script = string.Create(CultureInfo.InvariantCulture,
            $"while [ ! -e '{stopFile}' ]; do t=$(date +%H:%M:%S.%N | cut -c1-12); c=$(curl -s -o /dev/null -m {Patience.TotalSeconds} -w '%{{http_code}}' http://{target}/); echo \"$t $c\"; sleep 0.1; done");
        return LabProcesses.StartDetached(state.Node(node).Netns, log, "/bin/sh", ["-c", script], Lab.NodeCgroup(state, node));
    }

    /// <summary>The host curl's counts so far: lines with 200 answered, any other code lost.</summary>
    public static ProbeCounts ReadHostCurl(string log)
    {
        var counts = new ProbeCounts();
        foreach (var line in File.Exists(log) ? File.ReadAllLines(log) : [])
        {
            if (line.EndsWith(" 200", StringComparison.Ordinal))
            {
                counts.Answered();
            }
            else if (line.Length > 0)
            {
                counts.Lost(line);
            }
        }

        return counts;
    }

    /// <summary>A server in the pod's namespace on ip:port that echoes every line back, until cancelled.</summary>
    public static Socket ServeLines(LabPod pod, int port, CancellationToken ct)
    {
        var ip = IPAddress.Parse(pod.Ip!.Split('/')[0]);
        using var ns = NetNs.Open(pod.Netns);
        var listener = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        listener.Bind(new IPEndPoint(ip, port));
        listener.Listen(16);
        _ = Task.Run(async () =>
        {
            while (!ct.IsCancellationRequested)
            {
                var conn = await listener.AcceptAsync(ct);
                _ = Task.Run(async () =>
                {
                    using (conn)
                    {
                        var buf = new byte[256];
                        int n;
                        while ((n = await conn.ReceiveAsync(buf, ct)) > 0)
                        {
                            await conn.SendAsync(buf.AsMemory(0, n), ct);
                        }
                    }
                }, ct);
            }
        }, ct);
        return listener;
    }

    /// <summary>
    /// One connection to <paramref name="target"/>, opened now; then a line and its echo every 100 ms until cancelled.
    /// Returns the exchanges done and the first failure (null: the connection never broke).
    /// </summary>
    public static async Task<Func<CancellationToken, Task<(int Exchanges, string? Broken)>>> OpenLongLivedAsync(NetNsHandle ns, IPEndPoint target)
    {
        var s = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        using (var timeout = new CancellationTokenSource(Patience))
        {
            await s.ConnectAsync(target, timeout.Token);
        }

        return async ct =>
        {
            using (s)
            {
                var exchanges = 0;
                var buf = new byte[256];
                while (!ct.IsCancellationRequested)
                {
                    var line = $"line {exchanges}\n";
                    try
                    {
                        using var timeout = new CancellationTokenSource(Patience);
                        await s.SendAsync(Encoding.ASCII.GetBytes(line), timeout.Token);
                        var got = "";
                        while (!got.EndsWith('\n'))
                        {
                            var n = await s.ReceiveAsync(buf, timeout.Token);
                            if (n == 0)
                            {
                                return (exchanges, $"{DateTime.UtcNow:HH:mm:ss.fff} closed by the other end after {exchanges} exchanges");
                            }

                            got += Encoding.ASCII.GetString(buf, 0, n);
                        }

                        if (got != line)
                        {
                            return (exchanges, $"{DateTime.UtcNow:HH:mm:ss.fff} sent {line.Trim()}, got {got.Trim()}");
                        }
                    }
                    catch (Exception e) when (e is SocketException or OperationCanceledException)
                    {
                        return (exchanges, $"{DateTime.UtcNow:HH:mm:ss.fff} after {exchanges} exchanges: {e.Message}");
                    }

                    exchanges++;
                    await Task.Delay(Every, CancellationToken.None);
                }

                return (exchanges, null);
            }
        };
    }
}
