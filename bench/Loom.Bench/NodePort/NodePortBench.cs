using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Loom.Bench.LabScale;
using Loom.Bench.Services;
using Loom.Core.AgentApi;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Lab;
using Loom.Linux;

namespace Loom.Bench.NodePort;

/// <summary>
/// <c>Loom.Bench nodeport</c> (bench/nodeport.sh): for each service backend, a 3-node lab of its own (prefix
/// <c>lnp&lt;pid&gt;-&lt;b&gt;-</c>), one agnhost replica on k8s-w1 behind a NodePort Service, and from the lab's underlay
/// namespace (192.168.10.1) the new-connection rate to k8s-w1's IP:nodePort against the same client straight to the pod
/// (a route to k8s-w1's pod CIDR via its eth1 IP, in the underlay namespace only), in alternating slices
/// (<see cref="LoadGen.Interleaved"/>, as the services bench measures ClusterIP against direct), at 1 Service and again
/// once every agent has programmed N-1 more (ClusterIP Services written straight to the store, without endpoints).
/// </summary>
internal static class NodePortBench
{
    public const string Base = "lnp";
    private const int PodPort = 8080;

    public static int Run(string[] args)
    {
        if (!BenchHost.TryParse("nodeport", args, NodePortOptions.Parse, out var options))
        {
            return 2;
        }

        if (!BenchHost.IsRoot("nodeport", "the lab creates network namespaces"))
        {
            return 1;
        }

        if (!File.Exists(LoomCli.Loom))
        {
            Console.Error.WriteLine($"bench nodeport: {LoomCli.Loom} is missing; run `make build`");
            return 1;
        }

        return BenchHost.RunCancellable(ct => RunAsync(options, ct));
    }

    private static async Task<int> RunAsync(NodePortOptions options, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        BenchHost.Header("Loom NodePort benchmark");
        Console.WriteLine($"  workload  new TCP connections (connect, 4 bytes each way, RST close) from the underlay client, {options.Seconds} s per target in {options.Slices} alternating slices, 1 client thread;");
        Console.WriteLine($"            node port of k8s-w1 (its one replica local) vs straight to the pod; at {string.Join(" and ", options.Services)} Services");
        foreach (var swept in await LabBench.SweepStaleAsync(Base, ct).ConfigureAwait(false))
        {
            Console.WriteLine($"  swept     {swept}");
        }

        var rows = new List<Row>();
        try
        {
            foreach (var backend in options.Backends)
            {
                rows.AddRange(await BackendAsync(backend, options, ct).ConfigureAwait(false));
            }
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("bench nodeport: interrupted; the lab was taken down");
            return 130;
        }

        Console.WriteLine();
        Console.WriteLine($"{"backend",-9} {"services",8} {"nodeport conn/s",15} {"direct conn/s",13} {"ratio",6} {"connect p50 np/direct ms",25}  errors");
        foreach (var r in rows)
        {
            Console.WriteLine(r.Note is { } note
                ? $"{r.Backend,-9} {r.Services,8} {note}"
                : string.Create(CultureInfo.InvariantCulture,
                    $"{r.Backend,-9} {r.Services,8} {r.NodePort!.Rate,15:0} {r.Direct!.Rate,13:0} {Stats.Ratio(r.NodePort.Rate, r.Direct.Rate),6} {r.NodePort.Connect.P50,11:0.000} / {r.Direct.Connect.P50,-11:0.000}  {r.NodePort.Errors}/{r.Direct.Errors}{Broken(r)}"));
        }

        var outPath = options.Out ?? Path.Combine(Environment.GetEnvironmentVariable("LOOM_BENCH_OUT_DIR") ?? "out/bench", $"nodeport-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
        await File.WriteAllTextAsync(outPath, JsonSerializer.Serialize(rows, Json), CancellationToken.None).ConfigureAwait(false);
        Console.WriteLine($"results: {outPath}   total run time {total.Elapsed.TotalSeconds:0} s");
        return rows.Any(r => r.Note?.StartsWith("ERROR", StringComparison.Ordinal) == true) ? 1 : 0;
    }

    // A target that completed nothing has NaN latencies and an infinite ratio: written as "NaN" / "Infinity".
    // More failed connections than completed ones: the ratio says nothing about the node port's cost.
    private static string Broken(Row r) =>
        r.NodePort!.Errors > r.NodePort.Connections || r.Direct!.Errors > r.Direct.Connections ? "  (a path failing: ratio not meaningful)" : "";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    private static async Task<List<Row>> BackendAsync(ServiceProxyMode backend, NodePortOptions options, CancellationToken ct)
    {
        var name = backend.ToString().ToLowerInvariant();
        var prefix = RunPrefix.For(Base) + LabBench.Key(backend) + "-";
        var cli = new LoomCli(Path.Combine(Path.GetTempPath(), prefix + "lab"), prefix);
        var rows = new List<Row>();
        Console.WriteLine();
        Console.WriteLine($"== {name}: lab {prefix}* in {cli.LabDir}");
        try
        {
            Expect(await cli.LabAsync(["up", "--service-backend", name, "--no-dns", "--timeout", "180"], TimeSpan.FromSeconds(300), ct).ConfigureAwait(false), "lab up");
            Expect(await cli.LabAsync(["apply", "-f", "-"], TimeSpan.FromSeconds(120), ct, Manifest).ConfigureAwait(false), "apply of the NodePort Service");
            var state = LabBench.LoadState(cli.LabDir);
            var w1 = state.Node("k8s-w1");
            var pod = state.Pods.Single(p => p.Name == "np-bench");
            var store = await Lab.Lab.OpenStoreAsync(state, ct).ConfigureAwait(false);
            await using (store.ConfigureAwait(false))
            {
                var services = (await store.ListAsync(Kinds.Service, ct).ConfigureAwait(false)).Items.Select(v => v.Value).ToList();
                var nodePort = services.Single(s => s.Name == "np-bench").Ports[0].NodePort;
                if (nodePort == 0)
                {
                    throw new BenchException("Service np-bench has no node port in the store");
                }

                var cidr = (await Lab.Lab.ReadNodesAsync(state, ct).ConfigureAwait(false))["k8s-w1"].PodCidrs[0];
                RouteToPods(state, cidr, IPAddress.Parse(w1.Ip));
                Console.WriteLine($"   {w1.Ip}:{nodePort} (node port) vs {pod.Address}:{PodPort} (route {cidr} via {w1.Ip} in the underlay)");
                var targets = new[]
                {
                    ("nodeport", new[] { new IPEndPoint(IPAddress.Parse(w1.Ip), nodePort) }),
                    ("direct", new[] { new IPEndPoint(pod.Address!, PodPort) }),
                };
                using var underlay = NetNs.Open(state.UnderlayNetns);
                // The apply returns once the store has the Service: wait until every agent programs it before the first cell.
                if (!await ProgrammedAsync(state, services.Count, TimeSpan.FromSeconds(60), ct).ConfigureAwait(false))
                {
                    throw new BenchException($"the agents had not programmed the {services.Count} Service(s) of the apply within 60 s");
                }

                foreach (var n in options.Services)
                {
                    var written = services.Count;
                    if (n > written)
                    {
                        var clock = Stopwatch.StartNew();
                        await WriteServicesAsync(store, services, n - written, ct).ConfigureAwait(false);
                        var wrote = clock.Elapsed;
                        var programmed = await ProgrammedAsync(state, n, TimeSpan.FromSeconds(options.TimeoutSeconds), ct).ConfigureAwait(false);
                        Console.WriteLine($"   {n - written} Services written in {wrote.TotalSeconds:0.0} s; "
                            + (programmed ? $"every agent programmed {n} in {clock.Elapsed.TotalSeconds:0.0} s" : $"NOT programmed by every agent within {options.TimeoutSeconds} s"));
                        if (!programmed)
                        {
                            rows.Add(new Row(name, n, null, null, $"not measured: the agents had not programmed {n} Services within {options.TimeoutSeconds} s"));
                            continue;
                        }
                    }

                    // A short warm-up: it is bounded by count, and a path that loses SYNs costs 3 s a connection (TCP_SYNCNT 1).
                    var cells = LoadGen.Interleaved(underlay, targets, 1, options.Seconds, options.Slices, int.MaxValue, 20, null, ct);
                    var row = new Row(name, n, cells[0], cells[1], null);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"   {n} Services: node port {cells[0].Rate:0} conn/s, direct {cells[1].Rate:0} conn/s, ratio {Stats.Ratio(cells[0].Rate, cells[1].Rate)}; errors {cells[0].Errors}/{cells[1].Errors} {cells[0].FirstError ?? cells[1].FirstError}"));
                    rows.Add(row);
                }
            }
        }
        catch (BenchException e)
        {
            Console.WriteLine($"   ERROR: {e.Message}");
            rows.Add(new Row(name, 0, null, null, "ERROR: " + e.Message));
        }
        finally
        {
            // Not cancellable: an interrupted run still takes its lab down (the underlay route goes with its namespace).
            var down = await cli.LabAsync(["down"], TimeSpan.FromSeconds(180), CancellationToken.None).ConfigureAwait(false);
            Console.WriteLine(down.Ok ? $"   lab down in {down.Elapsed.TotalSeconds:0.0} s" : $"   WARNING: {down}");
        }

        return rows;
    }

    /// <summary>The pod's block via the node, in the lab's underlay namespace only, as a router of a natively routed network has it.</summary>
    private static void RouteToPods(LabState state, IPNetwork cidr, IPAddress via)
    {
        using var ns = NetNs.Open(state.UnderlayNetns);
        using var nl = Netlink.OpenIn(ns);
        var bridge = nl.LinkByName(Lab.Lab.UnderlayBridge) ?? throw new BenchException($"{Lab.Lab.UnderlayBridge} missing in {state.UnderlayNetns}");
        nl.RouteAdd(new Route(cidr) { Gateway = via, OutputIndex = bridge.Index });
    }

    /// <summary>
    /// <paramref name="count"/> ClusterIP Services (one TCP port, a selector no pod matches) written straight to the
    /// store, on addresses of 10.104.0.0/14 no Service holds, as the services bench makes its N without endpoints.
    /// </summary>
    private static async Task WriteServicesAsync(IStore store, List<Service> services, int count, CancellationToken ct)
    {
        var taken = services.Select(s => s.ClusterIp).ToHashSet();
        var next = 0;
        for (var i = 0; i < count; i++)
        {
            IPAddress ip;
            do
            {
                var k = next++;
                ip = (byte)k is 0 or 255 ? IPAddress.Any : new IPAddress([10, (byte)(104 + (k >> 16)), (byte)(k >> 8), (byte)k]);
            }
            while (ip.Equals(IPAddress.Any) || taken.Contains(ip));

            var svc = new Service
            {
                Namespace = "default",
                Name = string.Create(CultureInfo.InvariantCulture, $"scale-{services.Count:D5}"),
                ClusterIp = ip,
                Ports = [new ServicePort("http", Protocol.Tcp, 80, 8080)],
                Selector = new Dictionary<string, string> { ["app"] = string.Create(CultureInfo.InvariantCulture, $"none-{services.Count:D5}") },
            };
            await store.PutAsync(Kinds.Service, svc, cancellationToken: ct).ConfigureAwait(false);
            services.Add(svc);
            taken.Add(ip);
        }
    }

    /// <summary>Whether every agent reports at least <paramref name="ports"/> service ports (one per Service here) within the time.</summary>
    private static async Task<bool> ProgrammedAsync(LabState state, int ports, TimeSpan within, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + within;
        while (DateTime.UtcNow < deadline)
        {
            var done = 0;
            foreach (var n in state.Nodes)
            {
                try
                {
                    var status = (await AgentClient.SendAsync(Lab.Lab.AgentSocket(state, n.Name), new AgentRequest { Op = "status" }, TimeSpan.FromSeconds(10), ct).ConfigureAwait(false)).Status;
                    done += status is not null && status.Services >= ports ? 1 : 0;
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or TimeoutException)
                {
                    // busy syncing: ask again
                }
            }

            if (done == state.Nodes.Count)
            {
                return true;
            }

            await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
        }

        return false;
    }

    private static void Expect(CliRun run, string what)
    {
        if (!run.Ok)
        {
            throw new BenchException($"{what} failed: {run}");
        }
    }

    // One replica on k8s-w1 answering every connection with its name (agnhost serve-hostname --tcp), behind a NodePort.
    private const string Manifest = """
        apiVersion: v1
        kind: Pod
        metadata:
          name: np-bench
          labels:
            app: np-bench
        spec:
          nodeName: k8s-w1
          containers:
          - name: agnhost
            image: registry.k8s.io/e2e-test-images/agnhost:2.53
            args: ["serve-hostname", "--tcp", "--http=false", "--port", "8080"]
            ports:
            - containerPort: 8080
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: np-bench
        spec:
          type: NodePort
          selector:
            app: np-bench
          ports:
          - port: 80
            targetPort: 8080

        """;

    /// <summary>One backend at one N: the two load cells, or why it was not measured.</summary>
    internal sealed record Row(string Backend, int Services, LoadCell? NodePort, LoadCell? Direct, string? Note);
}

internal sealed record NodePortOptions
{
    public IReadOnlyList<ServiceProxyMode> Backends { get; init; } = [ServiceProxyMode.Iptables, ServiceProxyMode.Nftables, ServiceProxyMode.Ebpf];

    public IReadOnlyList<int> Services { get; init; } = [1, 10000];

    public double Seconds { get; init; } = 4;

    public int Slices { get; init; } = 8;

    public int TimeoutSeconds { get; init; } = 600;

    public string? Out { get; init; }

    public static NodePortOptions Parse(string[] args) => BenchArgs.Parse(args, new NodePortOptions(), (o, name, value) => name switch
    {
        "--backends" => o with { Backends = [.. value.Split(',').Select(b => Enum.TryParse<ServiceProxyMode>(b, ignoreCase: true, out var m) && Enum.IsDefined(m) ? m : throw new ArgumentException($"unknown backend '{b}' (iptables, nftables, ebpf)"))] },
        "--services" => o with { Services = [.. value.Split(',').Select(s => BenchArgs.Count(s, 1, 60000)).Order()] },
        "--seconds" => o with { Seconds = BenchArgs.Count(value, 1, 600) },
        "--slices" => o with { Slices = BenchArgs.Count(value, 1, 100) },
        "--timeout" => o with { TimeoutSeconds = BenchArgs.Count(value, 10, 7200) },
        "--out" => o with { Out = value },
        _ => throw new ArgumentException($"unknown option {name} (--backends, --services, --seconds, --slices, --timeout, --out)"),
    });
}
