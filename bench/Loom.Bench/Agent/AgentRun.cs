using System.Diagnostics;
using System.Globalization;
using System.Net;
using Loom.Bench.LabScale;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Lab;
using Loom.Linux;

namespace Loom.Bench.Agent;

/// <summary>
/// One agent variant on one backend: a 1-node lab of its own whose agent runs that binary, its memory and idle CPU with
/// no Service of the bench, then N Services written straight to the store (every 100th selecting two real pods), the
/// time until the agent's loom_services gauge shows them all, its memory and idle CPU again; lab down in finally.
/// </summary>
internal static class AgentRun
{
    public const string WebLabel = "loom-bench-web";
    public const int WithEndpointsEvery = 100;
    private const int Pods = 2;
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(5);

    public static async Task<AgentResult> RunAsync(ServiceProxyMode backend, string variant, string loom, AgentBenchOptions options, CancellationToken ct)
    {
        var prefix = RunPrefix.For(AgentBench.Base) + LabBench.Key(backend) + "-" + variant + "-";
        var labDir = Path.Combine(Path.GetTempPath(), prefix + "lab");
        var result = new AgentResult { Backend = LabBenchOptions.Name(backend), Variant = variant, Binary = loom, Prefix = prefix, LoadStart = Machine.Describe().LoadAverage };
        var log = new StringWriter(CultureInfo.InvariantCulture);
        AgentScrape? scrape = null;
        Console.WriteLine();
        Console.WriteLine($"== {result.Backend} / {variant}: lab {prefix}* in {labDir}, agent {loom}");
        try
        {
            var clock = Stopwatch.StartNew();
            var state = await Lab.Lab.UpAsync(new LabOptions
            {
                Nodes = 1,
                Prefix = prefix,
                LabDir = labDir,
                ServiceBackend = backend,
                LoomPath = loom,
                CniBinDir = Path.GetDirectoryName(LoomCli.Loom),
                ReadyTimeout = TimeSpan.FromSeconds(180),
                ClusterDns = false,
            }, log, ct).ConfigureAwait(false);
            result.UpS = clock.Elapsed.TotalSeconds;
            var node = state.Nodes[0];
            var pid = node.AgentPid ?? throw new BenchException("the lab recorded no agent pid");
            scrape = new AgentScrape(node.Netns, node.Ip);
            var (ports0, endpoints0) = await GaugesAsync(scrape, pid, TimeSpan.FromSeconds(60), ct).ConfigureAwait(false);
            Console.WriteLine($"   lab up (agent Ready) in {result.UpS:0.0} s; the agent reports {ports0} service ports, {endpoints0} endpoints");
            await Task.Delay(Settle, ct).ConfigureAwait(false);
            result.Empty = await IdleAsync(pid, ports0, endpoints0, options, ct).ConfigureAwait(false);

            var store = await Lab.Lab.OpenStoreAsync(state, ct).ConfigureAwait(false);
            await using (store.ConfigureAwait(false))
            {
                await Lab.Lab.ApplyAsync(state, WebPods(node.Name), TextWriter.Null, ct).ConfigureAwait(false);
                var wanted = (ports0 + options.Services, endpoints0 + (Pods * WithEndpoints(options.Services)));
                clock.Restart();
                await WriteServicesAsync(store, options.Services, ct).ConfigureAwait(false);
                result.WriteS = clock.Elapsed.TotalSeconds;
                Console.WriteLine($"   {options.Services} Services written to the store in {result.WriteS:0.0} s; waiting for {wanted.Item1} ports, {wanted.Item2} endpoints");
                var (ports, endpoints) = await WaitForAsync(scrape, pid, wanted, TimeSpan.FromSeconds(options.TimeoutSeconds), ct).ConfigureAwait(false);
                result.CaughtUpS = clock.Elapsed.TotalSeconds;
                Console.WriteLine($"   caught up {result.CaughtUpS:0.0} s after the first write");
                await Task.Delay(Settle, ct).ConfigureAwait(false);
                result.Loaded = await IdleAsync(pid, ports, endpoints, options, ct).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is BenchException or LabException or TimeoutException)
        {
            result.Status = "error";
            result.Error = e.Message;
            Console.WriteLine($"   ERROR: {e.Message}");
            Console.WriteLine(CliRun.Tail(log.ToString(), 20));
        }
        finally
        {
            scrape?.Dispose();
            result.LoadEnd = Machine.Describe().LoadAverage;
            // Not cancellable: an interrupted run still takes its lab down.
            var down = Stopwatch.StartNew();
            var found = await Lab.Lab.DownAsync(labDir, prefix, TextWriter.Null).ConfigureAwait(false);
            Console.WriteLine(found ? $"   lab down in {down.Elapsed.TotalSeconds:0.0} s" : "   WARNING: lab down found no lab");
        }

        return result;
    }

    public static int WithEndpoints(int services) => 1 + ((services - 1) / WithEndpointsEvery);

    /// <summary>Memory at the start and end of an idle window, and the CPU the agent used during it.</summary>
    private static async Task<PhaseResult> IdleAsync(int pid, int ports, int endpoints, AgentBenchOptions options, CancellationToken ct)
    {
        var from = ProcSample.TryRead(pid) ?? throw new BenchException($"the agent (pid {pid}) is gone");
        await Task.Delay(TimeSpan.FromSeconds(options.IdleSeconds), ct).ConfigureAwait(false);
        var to = ProcSample.TryRead(pid) ?? throw new BenchException($"the agent (pid {pid}) died while idle");
        var phase = new PhaseResult
        {
            ServicePorts = ports,
            Endpoints = endpoints,
            RssMb = from.RssMb,
            RssEndMb = to.RssMb,
            HwmMb = to.HwmMb,
            AnonMb = to.AnonMb,
            Threads = to.Threads,
            IdleCpuPercent = Math.Round(ProcSample.CpuPercent(from, to), 3),
        };
        Console.WriteLine($"   {ports} ports: RSS {phase.RssMb:0.0} -> {phase.RssEndMb:0.0} MB (peak {phase.HwmMb:0.0}, anonymous {phase.AnonMb:0.0}), {phase.Threads} threads, idle CPU {phase.IdleCpuPercent:0.000}% over {options.IdleSeconds} s");
        return phase;
    }

    /// <summary>Services bench-00000..., one TCP port each, ClusterIPs 10.104.0.1 on (inside the lab's 10.96.0.0/12, clear of the defaults).</summary>
    private static async Task WriteServicesAsync(IStore store, int services, CancellationToken ct)
    {
        // A few writers at once: one SQLite transaction per put, so a single writer waits on every fsync in turn.
        const int Writers = 8;
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, Writers).Select(async _ =>
        {
            for (var i = Interlocked.Increment(ref next); i < services; i = Interlocked.Increment(ref next))
            {
                var service = new Service
                {
                    Namespace = "default",
                    Name = string.Create(CultureInfo.InvariantCulture, $"bench-{i:D5}"),
                    ClusterIp = new IPAddress(new byte[] { 10, (byte)(104 + (i / 62500)), (byte)(i / 250 % 250), (byte)((i % 250) + 1) }),
                    Ports = [new ServicePort(null, Protocol.Tcp, 80, 80)],
                    Selector = new Dictionary<string, string>(StringComparer.Ordinal)
                    {
                        ["app"] = i % WithEndpointsEvery == 0 ? WebLabel : string.Create(CultureInfo.InvariantCulture, $"none-{i:D5}"),
                    },
                };
                var put = await store.PutAsync(Kinds.Service, service, expectedRevision: 0, cancellationToken: ct).ConfigureAwait(false);
                if (!put.Succeeded)
                {
                    throw new BenchException($"the store refused Service {service.Key}");
                }
            }
        })).ConfigureAwait(false);
    }

    /// <summary>Two idle pods on the node (nodeName: no scheduler, no taint) that every 100th Service selects.</summary>
    private static string WebPods(string node) => string.Concat(Enumerable.Range(0, Pods).Select(i => $"""
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: {WebLabel}-{i}
          labels:
            app: {WebLabel}
        spec:
          nodeName: {node}
          containers:
          - name: web
            image: traefik/whoami
          terminationGracePeriodSeconds: 0

        """));

    private static async Task<(int Ports, int Endpoints)> GaugesAsync(AgentScrape scrape, int pid, TimeSpan timeout, CancellationToken ct) =>
        await WaitForAsync(scrape, pid, (0, 0), timeout, ct).ConfigureAwait(false);

    /// <summary>Reads the agent's gauges every 250 ms until both reach <paramref name="wanted"/>; the last reading.</summary>
    private static async Task<(int Ports, int Endpoints)> WaitForAsync(AgentScrape scrape, int pid, (int Ports, int Endpoints) wanted, TimeSpan timeout, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        (int, int)? last = null;
        while (clock.Elapsed < timeout)
        {
            if (!LabProcesses.IsAlive(pid))
            {
                throw new BenchException($"the agent (pid {pid}) died");
            }

            if (await scrape.TryReadAsync(ct).ConfigureAwait(false) is { } m)
            {
                var ports = m.Value("loom_services") ?? throw new BenchException("the agent exports no loom_services gauge");
                var endpoints = m.Value("loom_service_endpoints") ?? throw new BenchException("the agent exports no loom_service_endpoints gauge");
                last = ((int)ports, (int)endpoints);
                if (ports >= wanted.Ports && endpoints >= wanted.Endpoints)
                {
                    return last.Value;
                }
            }

            await Task.Delay(250, ct).ConfigureAwait(false);
        }

        throw new BenchException($"timeout after {timeout.TotalSeconds:0} s: the agent reports {(last is { } l ? $"{l.Item1} ports, {l.Item2} endpoints" : "nothing")}, wanted {wanted.Ports}, {wanted.Endpoints}");
    }
}

internal sealed class AgentResult
{
    public string Backend { get; init; } = "";

    public string Variant { get; init; } = "";

    public string Binary { get; init; } = "";

    public string Prefix { get; init; } = "";

    public string Status { get; set; } = "ok";

    public string? Error { get; set; }

    public string LoadStart { get; init; } = "";

    public string LoadEnd { get; set; } = "";

    public double? UpS { get; set; }

    public double? WriteS { get; set; }

    public double? CaughtUpS { get; set; }

    public PhaseResult? Empty { get; set; }

    public PhaseResult? Loaded { get; set; }
}

internal sealed class PhaseResult
{
    public int ServicePorts { get; init; }

    public int Endpoints { get; init; }

    public double RssMb { get; init; }

    public double RssEndMb { get; init; }

    public double HwmMb { get; init; }

    public double AnonMb { get; init; }

    public int Threads { get; init; }

    public double IdleCpuPercent { get; init; }
}
