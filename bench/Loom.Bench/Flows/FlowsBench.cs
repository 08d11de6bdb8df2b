using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Loom.Datapath.Flows;
using Loom.Linux;

namespace Loom.Bench.Flows;

/// <summary>
/// <c>Loom.Bench flows</c> (bench/flows.sh): the cost of flow events on the eBPF datapath. Sequential new TCP
/// connections pod 1 -> pod 2 through policy.o on both host veths (<see cref="FlowsTopology"/>), with events off,
/// on with medium aggregation (the default) and on with none, the modes rotating within each repetition; a reader
/// thread drains the ring as the agent does. Reports conn/s per mode and the ratio to off (goal: medium >= 0.95x).
/// </summary>
internal static class FlowsBench
{
    private const double Goal = 0.95;

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    private static readonly FlowEventConfig[] Modes =
    [
        new(false, FlowAggregation.Medium, FlowEventConfig.DefaultInterval),
        new(true, FlowAggregation.Medium, FlowEventConfig.DefaultInterval),
        new(true, FlowAggregation.None, FlowEventConfig.DefaultInterval),
    ];

    public static int Run(string[] args)
    {
        if (!BenchHost.TryParse("flows", args, FlowsOptions.Parse, out var options))
        {
            return 2;
        }

        if (!BenchHost.IsRoot("flows", "it creates network namespaces and loads BPF programs"))
        {
            return 1;
        }

        return BenchHost.RunCancellable(ct => Task.FromResult(Measure(options, ct)));
    }

    private static int Measure(FlowsOptions options, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        var machine = BenchHost.Header("Loom flow-events benchmark");
        Console.WriteLine($"  workload  {options.Reps} reps x {options.Seconds} s of sequential new TCP connections pod -> pod (one node, policy.o on both veths, " +
            "the server's ingress enforced), events off / medium / none rotating; a reader drains the ring");
        var swept = FlowsTopology.SweepStale();
        if (swept > 0)
        {
            Console.WriteLine($"  swept     {swept} namespace(s) / pin directories left by killed runs");
        }

        var rates = Modes.ToDictionary(Name, _ => new List<double>());
        var events = Modes.ToDictionary(Name, _ => 0L);
        long lost;
        try
        {
            using var topo = new FlowsTopology();
            using var server = Server.Start(topo.Pod2, ct);
            using var reader = FlowEventReader.Open(topo.EventsDirectory);
            var read = 0L;
            var drain = new Thread(() =>
            {
                while (!server.Stopping)
                {
                    var n = reader.Poll(_ => { }, 100);
                    Interlocked.Add(ref read, n);
                }
            }) { IsBackground = true, Name = "flow-events" };
            drain.Start();
            try
            {
                Connections(topo.Pod1, TimeSpan.FromSeconds(1), ct); // warm-up: JIT, neighbours, conntrack
                for (var rep = 0; rep < options.Reps; rep++)
                {
                    Console.Write($"rep {rep + 1}/{options.Reps}:");
                    for (var k = 0; k < Modes.Length; k++)
                    {
                        var mode = Modes[(k + rep) % Modes.Length];
                        mode.Write(topo.EventsDirectory);
                        var before = Interlocked.Read(ref read);
                        var rate = Connections(topo.Pod1, TimeSpan.FromSeconds(options.Seconds), ct);
                        rates[Name(mode)].Add(rate);
                        events[Name(mode)] += Interlocked.Read(ref read) - before;
                        Console.Write($" {Name(mode)} {rate:0}/s");
                    }

                    Console.WriteLine();
                }
            }
            finally
            {
                server.Stop();
                drain.Join();
            }

            lost = reader.Lost;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("bench flows: interrupted");
            return 130;
        }

        Report(options, machine, rates, events, lost, total.Elapsed);
        return 0;
    }

    private static string Name(FlowEventConfig c) => !c.Enabled ? "off" : c.Aggregation == FlowAggregation.Medium ? "medium" : "none";

    /// <summary>Connects, one at a time, for <paramref name="duration"/>; each connection closes with a RST (no TIME_WAIT). Connections per second.</summary>
    private static double Connections(NetNsHandle client, TimeSpan duration, CancellationToken ct) => NetNs.Run(client, () =>
    {
        var target = new IPEndPoint(FlowsTopology.PodIp(2), FlowsTopology.Port);
        var sw = Stopwatch.StartNew();
        var n = 0;
        while (sw.Elapsed < duration)
        {
            ct.ThrowIfCancellationRequested();
            using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.LingerState = new LingerOption(true, 0);
            s.Connect(target);
            n++;
        }

        return n / sw.Elapsed.TotalSeconds;
    });

    private static void Report(FlowsOptions options, Machine machine, Dictionary<string, List<double>> rates, Dictionary<string, long> events, long lost, TimeSpan elapsed)
    {
        var off = Stats.Of(rates["off"]).P50;
        Console.WriteLine();
        Console.WriteLine($"{"mode",-8} {"conn/s p50",11} {"min",8} {"max",8} {"vs off",8} {"events/conn",12}");
        foreach (var (mode, samples) in rates)
        {
            var s = Stats.Of(samples);
            var conns = samples.Sum() * options.Seconds;
            var perConn = conns > 0 ? (events[mode] / conns).ToString("0.0", CultureInfo.InvariantCulture) : "-";
            Console.WriteLine($"{mode,-8} {s.P50,11:0} {s.Min,8:0} {s.Max,8:0} {Stats.Ratio(s.P50, off),8} {perConn,12}");
        }

        var medium = Stats.Of(rates["medium"]).P50 / off;
        Console.WriteLine($"goal: medium >= {Goal:0.00}x off: {(medium >= Goal ? "met" : "NOT met")} ({medium:0.00}x); lost events {lost}");
        var json = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["date"] = DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture),
            ["commit"] = Environment.GetEnvironmentVariable("LOOM_BENCH_COMMIT") ?? "?",
            ["cpus"] = machine.Nproc,
            ["kernel"] = machine.Kernel,
            ["seconds"] = options.Seconds,
            ["reps"] = options.Reps,
            ["connPerSecond"] = rates,
            ["events"] = events,
            ["lost"] = lost,
            ["mediumVsOff"] = medium,
        }, Indented);
        var outPath = options.Out ?? Path.Combine(Environment.GetEnvironmentVariable("LOOM_BENCH_OUT_DIR") ?? "out/bench", $"flows-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
        File.WriteAllText(outPath, json);
        Console.WriteLine($"results: {outPath}   total run time {elapsed.TotalSeconds:0.0} s");
    }

    /// <summary>pod 2's server: accepts and closes, on one thread inside its namespace.</summary>
    private sealed class Server : IDisposable
    {
        private readonly Socket _listener;
        private readonly Thread _thread;
        private volatile bool _stopping;

        private Server(Socket listener)
        {
            _listener = listener;
            _thread = new Thread(Accept) { IsBackground = true, Name = "flows-server" };
            _thread.Start();
        }

        public bool Stopping => _stopping;

        public static Server Start(NetNsHandle pod, CancellationToken ct)
        {
            ct.ThrowIfCancellationRequested();
            var l = NetNs.Run(pod, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            l.Bind(new IPEndPoint(IPAddress.Any, FlowsTopology.Port));
            l.Listen(512);
            return new Server(l);
        }

        public void Stop()
        {
            _stopping = true;
            _listener.Dispose();
            _thread.Join();
        }

        public void Dispose()
        {
            if (!_stopping)
            {
                Stop();
            }
        }

        private void Accept()
        {
            while (!_stopping)
            {
                try
                {
                    _listener.Accept().Dispose();
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    // The listener closed: Stop.
                }
            }
        }
    }
}
