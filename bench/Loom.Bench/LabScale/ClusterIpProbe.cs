using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Linux;

namespace Loom.Bench.LabScale;

/// <summary>When a new ClusterIP first answered from one pod: the attempt's start and its answer, in ms after the store write.</summary>
internal sealed record ProbeHit(double LiveMs, double AnsweredMs, int Attempts);

/// <summary>
/// The starting gun of one probe: every prober signals <see cref="Ready"/> once its thread is inside its pod, the
/// writer then takes <see cref="Start"/> (right before the store write) and sets <see cref="Go"/>.
/// </summary>
internal sealed class ProbeStart(int probers) : IDisposable
{
    public CountdownEvent Ready { get; } = new(probers);

    public ManualResetEventSlim Go { get; } = new();

    /// <summary><see cref="Stopwatch"/> timestamp of the store write; read only after <see cref="Go"/>.</summary>
    public long Start { get; private set; }

    public void Fire()
    {
        Start = Stopwatch.GetTimestamp();
        Go.Set();
    }

    public void Dispose()
    {
        Ready.Dispose();
        Go.Dispose();
    }
}

/// <summary>
/// A client in a pod hammering a ClusterIP until the lab's whoami answers through it: a new TCP connection every
/// millisecond (every 5 ms after 2 s, every 20 ms after 20 s, to bound the dead connections a slow change leaves in
/// the node's conntrack table), each one sending an HTTP request and waiting for whoami's "Hostname:". Attempts overlap:
/// before the rule exists a SYN is either refused at once (ICMP unreachable from the underlay) or lost, and a lost one
/// must not hold up the next. Sockets are created on a thread inside the pod's namespace; no process is spawned.
/// </summary>
internal static class ClusterIpProbe
{
    private static readonly TimeSpan AttemptTimeout = TimeSpan.FromMilliseconds(300);
    private static readonly TimeSpan ExchangeTimeout = TimeSpan.FromSeconds(3);
    private const int MaxInFlight = 400;
    private static readonly byte[] Request = Encoding.ASCII.GetBytes("GET / HTTP/1.0\r\nHost: bench\r\n\r\n");

    /// <summary>
    /// Probes <paramref name="target"/> from <paramref name="podNetns"/> until it answers or <paramref name="timeout"/>;
    /// timed from <paramref name="gun"/>'s store write. Null on timeout. Blocks the calling thread (use a long-running task).
    /// </summary>
    public static ProbeHit? Run(NetNsHandle podNetns, IPEndPoint target, ProbeStart gun, TimeSpan timeout, CancellationToken ct)
    {
        return NetNs.Run(podNetns, () =>
        {
            gun.Ready.Signal();
            gun.Go.Wait(ct);
            var start = gun.Start;
            var inFlight = new List<Task<ProbeHit?>>();
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var attempts = 0;
            try
            {
                while (true)
                {
                    ct.ThrowIfCancellationRequested();
                    if (inFlight.FirstOrDefault(t => t.IsCompletedSuccessfully && t.Result is not null) is { } done)
                    {
                        return done.Result! with { Attempts = attempts };
                    }

                    inFlight.RemoveAll(t => t.IsCompleted);

                    var elapsed = Stopwatch.GetElapsedTime(start);
                    if (elapsed > timeout)
                    {
                        return null;
                    }

                    if (inFlight.Count < MaxInFlight)
                    {
                        // Created here, on the thread inside the pod's namespace; used from pool threads after.
                        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                        inFlight.Add(AttemptAsync(socket, target, start, stop.Token));
                        attempts++;
                    }

                    Thread.Sleep(elapsed < TimeSpan.FromSeconds(2) ? 1 : elapsed < TimeSpan.FromSeconds(20) ? 5 : 20);
                }
            }
            finally
            {
                stop.Cancel();
            }
        });
    }

    private static async Task<ProbeHit?> AttemptAsync(Socket socket, IPEndPoint target, long start, CancellationToken stop)
    {
        using (socket)
        {
            var began = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            try
            {
                using (var connect = CancellationTokenSource.CreateLinkedTokenSource(stop))
                {
                    connect.CancelAfter(AttemptTimeout);
                    await socket.ConnectAsync(target, connect.Token).ConfigureAwait(false);
                }

                // Connected through the new rule: the answer may take longer on a loaded machine, it is no longer a race.
                using var exchange = CancellationTokenSource.CreateLinkedTokenSource(stop);
                exchange.CancelAfter(ExchangeTimeout);
                await socket.SendAsync(Request, exchange.Token).ConfigureAwait(false);
                var reply = new StringBuilder();
                var buf = new byte[4096];
                while (true)
                {
                    var n = await socket.ReceiveAsync(buf, exchange.Token).ConfigureAwait(false);
                    if (n == 0)
                    {
                        return null;
                    }

                    reply.Append(Encoding.ASCII.GetString(buf, 0, n));
                    if (reply.ToString().Contains("Hostname:", StringComparison.Ordinal))
                    {
                        return new ProbeHit(began, Stopwatch.GetElapsedTime(start).TotalMilliseconds, 0);
                    }
                }
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                return null;
            }
        }
    }
}
