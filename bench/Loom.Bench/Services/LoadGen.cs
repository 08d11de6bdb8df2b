using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Loom.Linux;

namespace Loom.Bench.Services;

/// <summary>The figures of one load cell (one target, one N, one backend).</summary>
internal sealed class LoadCell
{
    public string Target { get; set; } = "";

    public string Address { get; set; } = "";

    public int Clients { get; set; }

    public int Connections { get; set; }

    public int Errors { get; set; }

    public string? FirstError { get; set; }

    public double Seconds { get; set; }

    /// <summary>Completed transactions per second (all clients together).</summary>
    public double Rate { get; set; }

    /// <summary>connect() alone: SYN out, SYN-ACK back (the packet the service rules DNAT).</summary>
    public Stats Connect { get; set; } = Stats.Of([]);

    /// <summary>connect + 4-byte request + 4-byte answer read (the close, an RST, is not included).</summary>
    public Stats Txn { get; set; } = Stats.Of([]);

    public double ConnectP90 { get; set; }

    public double TxnP90 { get; set; }

    /// <summary>How many answers came from each backend pod (be1..be4): the service spreads over all four.</summary>
    public int[] PerBackend { get; set; } = [];
}

/// <summary>
/// New TCP connections from the client pod (to one endpoint, or round-robin over several), one after the other on each of <c>clients</c> threads that entered the
/// client pod's namespace (so their sockets are the pod's). Each: socket, connect, send 4 bytes, read the 4-byte
/// answer, close with SO_LINGER 0 (an RST: no TIME_WAIT on either side, so the ephemeral ports never run out and
/// the server's accept queue never fills with closing sockets). Bounded by time and by count.
/// Latency samples are taken on the client threads only; each slice's threads are joined before the next slice.
/// </summary>
internal static class LoadGen
{
    private static readonly byte[] Request = "ping"u8.ToArray();
    private static readonly byte[] SynCnt = BitConverter.GetBytes(1);

    /// <summary>One target alone (the no-rules baseline).</summary>
    public static LoadCell Run(NetNsHandle client, string target, IPEndPoint[] eps, int clients, double seconds, int maxConnections, int warmup, PortRange? sourcePorts, CancellationToken cancel) =>
        Interleaved(client, [(target, eps)], clients, seconds, 1, maxConnections, warmup, sourcePorts is null ? null : [sourcePorts], cancel)[0];

    /// <summary>
    /// Several targets measured in alternating time slices (A, B, A, B, ...; <paramref name="slices"/> each, 
    /// <paramref name="seconds"/> per target in all), so that what else the machine does hits every target alike.
    /// A target's rate is its completed connections over the time of its own slices.
    /// </summary>
    /// <remarks>
    /// <paramref name="sourcePorts"/>, when given, is one source port range per target: each socket binds the next port
    /// of its target's range before connecting (so two targets never share a 4-tuple's client end). The eBPF run uses it;
    /// since lb4 handles a closed flow's tuple being reused (see bench/README.md) that is no longer needed for
    /// correctness, only kept so the figures stay comparable with earlier runs.
    /// </remarks>
    public static LoadCell[] Interleaved(NetNsHandle client, (string Target, IPEndPoint[] Eps)[] targets, int clients, double seconds, int slices,
        int maxConnections, int warmup, PortRange[]? sourcePorts, CancellationToken cancel)
    {
        var acc = targets.Select(_ => new Accumulator(clients)).ToArray();
        for (var k = 0; k < targets.Length; k++)
        {
            // Warm-up, untimed: conntrack/route caches, the JIT, the server threads.
            Loop(client, targets[k].Eps, warmup, double.MaxValue, null, null, null, out _, out _, sourcePorts?[k], cancel);
        }

        for (var slice = 0; slice < slices; slice++)
        {
            for (var k = 0; k < targets.Length; k++)
            {
                cancel.ThrowIfCancellationRequested();
                Slice(client, targets[k].Eps, clients, seconds / slices, maxConnections / slices, acc[k], sourcePorts?[k], cancel);
            }
        }

        cancel.ThrowIfCancellationRequested();
        return targets.Select((t, k) => acc[k].Cell(t.Target, t.Eps, clients)).ToArray();
    }

    private static void Slice(NetNsHandle client, IPEndPoint[] eps, int clients, double seconds, int maxConnections, Accumulator acc, PortRange? ports, CancellationToken cancel)
    {
        var threads = new Thread[clients];
        var sw = Stopwatch.StartNew();
        for (var c = 0; c < clients; c++)
        {
            var i = c;
            threads[i] = new Thread(() =>
            {
                acc.Errors[i] += Loop(client, eps, Math.Max(1, maxConnections / clients), seconds, acc.Connect[i], acc.Txn[i], acc.Per[i], out var first, out _, ports, cancel);
                acc.FirstError[i] ??= first;
            })
            {
                IsBackground = true,
                Name = "lbs-client",
            };
            threads[i].Start();
        }

        foreach (var t in threads)
        {
            t.Join();
        }

        acc.Seconds += sw.Elapsed.TotalSeconds;
    }

    private sealed class Accumulator
    {
        public Accumulator(int clients)
        {
            Connect = Enumerable.Range(0, clients).Select(_ => new List<double>(16384)).ToArray();
            Txn = Enumerable.Range(0, clients).Select(_ => new List<double>(16384)).ToArray();
            Per = Enumerable.Range(0, clients).Select(_ => new int[SvcTopology.Backends + 1]).ToArray();
            Errors = new int[clients];
            FirstError = new string?[clients];
        }

        public List<double>[] Connect { get; }

        public List<double>[] Txn { get; }

        public int[][] Per { get; }

        public int[] Errors { get; }

        public string?[] FirstError { get; }

        public double Seconds { get; set; }

        public LoadCell Cell(string target, IPEndPoint[] eps, int clients)
        {
            var allConnect = Connect.SelectMany(l => l).ToList();
            var allTxn = Txn.SelectMany(l => l).ToList();
            var perBackend = new int[SvcTopology.Backends];
            for (var k = 0; k < SvcTopology.Backends; k++)
            {
                perBackend[k] = Per.Sum(p => p[k + 1]);
            }

            return new LoadCell
            {
                Target = target,
                Address = string.Join(' ', eps.Select(e => e.ToString())),
                Clients = clients,
                Connections = allTxn.Count,
                Errors = Errors.Sum(),
                FirstError = FirstError.FirstOrDefault(e => e is not null),
                Seconds = Math.Round(Seconds, 3),
                Rate = allTxn.Count / Seconds,
                Connect = Stats.Of(allConnect),
                Txn = Stats.Of(allTxn),
                ConnectP90 = Percentile(allConnect, 0.90),
                TxnP90 = Percentile(allTxn, 0.90),
                PerBackend = perBackend,
            };
        }
    }

    private static double Percentile(List<double> samples, double p)
    {
        if (samples.Count == 0)
        {
            return double.NaN;
        }

        var sorted = samples.Order().ToArray();
        return sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
    }

    // Runs on a fresh thread inside the client pod's namespace; returns the number of failed connections.
    private static int Loop(NetNsHandle client, IPEndPoint[] eps, int max, double seconds,
        List<double>? connect, List<double>? txn, int[]? per, out string? firstError, out int done, PortRange? ports, CancellationToken cancel)
    {
        string? first = null;
        var n = 0;
        var errors = NetNs.Run(client, () =>
        {
            var buf = new byte[16];
            var freq = (double)Stopwatch.Frequency;
            var deadline = seconds >= double.MaxValue ? long.MaxValue : Stopwatch.GetTimestamp() + (long)(seconds * freq);
            var linger = new LingerOption(true, 0);
            var errs = 0;
            while (n < max && Stopwatch.GetTimestamp() < deadline && !cancel.IsCancellationRequested)
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    s.NoDelay = true;
                    s.ReceiveTimeout = 2000;
                    // TCP_SYNCNT 1: a lost SYN fails the connect after ~3 s instead of ~2 min.
                    s.SetRawSocketOption(6 /* IPPROTO_TCP */, 7 /* TCP_SYNCNT */, SynCnt);
                    var t0 = Stopwatch.GetTimestamp();
                    if (ports is not null)
                    {
                        // Inside the timed region, as the kernel's own port choice is for the other backends.
                        s.Bind(new IPEndPoint(IPAddress.Any, ports.Next()));
                    }

                    s.Connect(eps[n % eps.Length]);
                    var t1 = Stopwatch.GetTimestamp();
                    s.Send(Request);
                    var got = 0;
                    while (got < 4)
                    {
                        var r = s.Receive(buf, got, 4 - got, SocketFlags.None);
                        if (r == 0)
                        {
                            break;
                        }

                        got += r;
                    }

                    var t2 = Stopwatch.GetTimestamp();
                    if (got != 4)
                    {
                        errs++;
                        first ??= $"short answer ({got} bytes)";
                    }
                    else
                    {
                        connect?.Add((t1 - t0) * 1000.0 / freq);
                        txn?.Add((t2 - t0) * 1000.0 / freq);
                        if (per is not null && buf[0] == (byte)'b' && buf[1] == (byte)'e' && buf[2] is >= (byte)'1' and <= (byte)'9')
                        {
                            var k = buf[2] - '0';
                            if (k < per.Length)
                            {
                                per[k]++;
                            }
                        }
                    }

                    s.LingerState = linger;
                }
                catch (SocketException e)
                {
                    errs++;
                    first ??= e.SocketErrorCode.ToString();
                }
                finally
                {
                    s.Dispose();
                }

                n++;
            }

            return errs;
        });
        firstError = first;
        done = n;
        return errors;
    }
}

/// <summary>A source port range [Lo, Hi) handed out round-robin (thread-safe). Connections close with RST, so a port is free again at once.</summary>
internal sealed class PortRange(int lo, int hi)
{
    private int _next = -1;

    public int Lo { get; } = lo;

    public int Hi { get; } = hi;

    public int Next() => Lo + (int)((uint)Interlocked.Increment(ref _next) % (uint)(Hi - Lo));
}
