using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Text.Json;
using Loom.Core.Model;
using Loom.Datapath.Services;
using Loom.Datapath.Services.Ebpf;
using Loom.Linux;
using Loom.Linux.Bpf;
using Loom.Linux.Firewall;

namespace Loom.Bench.Services;

/// <summary>
/// <c>Loom.Bench services</c>: the service backends (iptables, nftables) with N services of 4 endpoints each, the
/// target service last: sync times, new-connection rate and latency from a client pod to the target's ClusterIP
/// and straight to a backend pod, memory. See bench/README.md. One backend per process (<c>--backend</c>, results
/// to <c>--part FILE</c>) so that the RSS figures are that backend's alone; <c>--merge</c> prints the comparison.
/// Every rule, address and link lives in namespaces named <c>lbs&lt;pid&gt;-*</c>; iptables-restore and nft run only
/// on threads that entered the bench's node namespace.
/// </summary>
internal static class ServicesBench
{
    public const string Base = "lbs";
    public static readonly IPAddress TargetIp = IPAddress.Parse("10.100.0.10");
    public const int ServicePort = 80;

    public static int Run(string[] args)
    {
        if (!BenchHost.TryParse("services", args, SvcOptions.Parse, out var options))
        {
            return 2;
        }

        if (options.Merge.Count > 0)
        {
            return SvcReport.Merge(options);
        }

        if (!BenchHost.IsRoot("services", "it creates network namespaces"))
        {
            return 1;
        }

        return BenchHost.RunCancellable(ct => Task.FromResult(RunAll(options, ct)));
    }

    private static int RunAll(SvcOptions options, CancellationToken cancel)
    {
        var swept = NetNs.SweepStale(Base);
        if (swept.Count > 0)
        {
            Console.WriteLine($"  swept {swept.Count} namespace(s) left by killed runs");
        }

        var sweptPins = SweepStalePins();
        if (sweptPins > 0)
        {
            Console.WriteLine($"  swept {sweptPins} bpffs pin directory(ies) {BpfFs.DefaultRoot}/{Base}<pid>-ebpf left by killed runs");
        }

        var runs = new List<BackendRun>();
        foreach (var backend in options.Backends)
        {
            try
            {
                runs.Add(RunBackend(backend, options, cancel));
            }
            catch (OperationCanceledException)
            {
                Console.Error.WriteLine();
                Console.Error.WriteLine("bench services: interrupted; cleaned up");
                return 130;
            }
            catch (Exception e)
            {
                // Caught, not left unhandled: an unhandled exception would skip the finally and leave namespaces behind.
                Console.Error.WriteLine();
                Console.Error.WriteLine("bench services: " + e);
                return 1;
            }
        }

        if (options.Part is { } part)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(part))!);
            File.WriteAllText(part, JsonSerializer.Serialize(runs, SvcReport.JsonOptions));
            return 0;
        }

        return SvcReport.Print(runs, options);
    }

    private static BackendRun RunBackend(string backend, SvcOptions options, CancellationToken cancel)
    {
        var total = Stopwatch.StartNew();
        var machine = Machine.Describe();
        var key = backend switch { "iptables" => "ipt", "nftables" => "nft", _ => "ebpf" };
        var ebpf = backend == "ebpf";
        // Per-run pin directory /sys/fs/bpf/lbs<pid>-ebpf (removed in the finally; a killed run's is swept by the next).
        var pinDir = Path.Combine(BpfFs.DefaultRoot, RunPrefix.For(Base) + "ebpf");
        var lb4 = ebpf ? new EbpfServiceBackend(new EbpfServiceOptions { PinDirectory = pinDir }).ObjectPath : null;
        var run = new BackendRun
        {
            Backend = backend,
            Tool = backend switch
            {
                "iptables" => ToolVersion("/usr/sbin/iptables", "--version"),
                "nftables" => ToolVersion("/usr/sbin/nft", "--version"),
                _ => $"{lb4} (tc on the client pod's host-side veth, pins {pinDir})",
            },
            Date = DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture),
            Nproc = machine.Nproc,
            Cpu = machine.Cpu,
            Kernel = machine.Kernel,
            Runtime = RuntimeInformation.FrameworkDescription,
            LoadAverageAtStart = machine.LoadAverage,
            Seconds = options.Seconds,
            MaxConnections = options.MaxConnections,
            Clients = options.Clients,
            Reps = options.Reps,
            Slices = options.Slices,
            SyncTimeoutSeconds = options.SyncTimeout,
            SyncBudgetSeconds = options.SyncBudget,
        };
        Console.WriteLine($"Loom services benchmark: {backend} ({run.Tool})");
        Console.WriteLine($"  machine   {machine.Nproc} CPUs, {machine.Cpu}, kernel {machine.Kernel}, {run.Runtime}");
        Console.WriteLine($"  load      {machine.LoadAverage} (1/5/15 min){BusyNote(machine)}");
        Console.WriteLine($"  workload  N = {string.Join(", ", options.Services)} services x 4 endpoints (target last); load {options.Seconds:0.#} s or {options.MaxConnections} connections per cell, {options.Clients} client thread(s), service and direct interleaved in {options.Slices} slices each");

        using var topo = new SvcTopology(RunPrefix.For(Base) + key + "-");
        Func<IServiceBackend> make = backend switch
        {
            "iptables" => () => ServiceBackends.Iptables(),
            "nftables" => () => ServiceBackends.Nftables(),
            // Per-packet tc path only (no CgroupPath: no socket LB): every Sync makes sure the client pod's host-side
            // veth (in the node namespace) carries lb4_from_pod (ingress) and lb4_to_pod (egress).
            _ => () => ServiceBackends.Ebpf(new EbpfServiceOptions { PinDirectory = pinDir, Interfaces = () => [topo.ClientVethIndex] }),
        };
        IServiceBackend live = make();
        try
        {
            var services = options.Services.ToList();
            if (ebpf)
            {
                if (!File.Exists(lb4))
                {
                    throw new InvalidOperationException($"{lb4} is missing: run `make build` (it runs make -C bpf)");
                }

                services = FitEbpf(run, lb4, services);
            }

            Console.Write("  setting up namespaces ...");
            topo.Create();
            Console.WriteLine(" node, client pod, 4 backend pods");
            // Direct: round-robin over the 4 backend pods, as the service spreads its connections over them, so both
            // rows wake the same four server threads (one hot server thread alone would flatter the direct row).
            var direct = Enumerable.Range(1, SvcTopology.Backends).Select(k => new IPEndPoint(SvcTopology.BackendIp(k), SvcTopology.BackendPort)).ToArray();
            IPEndPoint[] service = [new IPEndPoint(TargetIp, ServicePort)];
            // eBPF: disjoint client source ports for service and direct (see LoadGen.Interleaved; no longer needed for
            // correctness since lb4 handles port reuse after a closed flow, kept for comparable figures).
            PortRange[]? ports = ebpf ? [new PortRange(40000, 60000), new PortRange(20000, 40000)] : null;
            if (ebpf)
            {
                Console.WriteLine("  ports     ebpf: service connections bind source ports 40000-59999, direct ones 20000-39999 (as earlier runs; not needed for correctness)");
            }

            Console.Write("  baseline: direct, no rules in the node ...");
            run.Baseline = LoadGen.Run(topo.Client, "direct (no rules)", direct, options.Clients, options.Seconds, options.MaxConnections, options.Warmup, ports?[1], cancel);
            Console.WriteLine($" {run.Baseline.Rate:0} conn/s");
            CheckLoad(run, "baseline", run.Baseline);

            var inKernel = 0; // how many services the kernel holds now
            string? gaveUp = null;
            foreach (var n in services)
            {
                cancel.ThrowIfCancellationRequested();
                var cell = new NCell { Services = n };
                run.Cells.Add(cell);
                if (gaveUp is not null)
                {
                    cell.Note = "skipped: " + gaveUp;
                    Console.WriteLine($"  N={n,-6} skipped ({gaveUp})");
                    continue;
                }

                var desired = Desired(n, changed: false);
                var changed = Desired(n, changed: true);
                Console.Write($"  N={n,-6} syncs: initial");

                // Initial: flush what is there (timed), then a new instance's first sync into the empty kernel.
                var budget = Stopwatch.StartNew();
                for (var r = 0; r < options.Reps && (r == 0 || budget.Elapsed.TotalSeconds < options.SyncBudget); r++)
                {
                    cancel.ThrowIfCancellationRequested();
                    if (inKernel > 0)
                    {
                        // Timed only when it removes these N services (not the previous N's).
                        var flushing = live;
                        var f = Timed(topo, flushing.Flush, options.SyncTimeout, inKernel == n ? cell.Flush : null);
                        if (!f)
                        {
                            gaveUp = $"Flush() of {inKernel} services took over {options.SyncTimeout:0} s";
                            break;
                        }

                        Retire(flushing);
                        inKernel = 0;
                    }

                    var instance = make();
                    live = instance;
                    if (!Timed(topo, () => instance.Sync(desired), options.SyncTimeout, cell.Initial))
                    {
                        gaveUp = $"the initial sync of {n} services took over {options.SyncTimeout:0} s";
                        break;
                    }

                    inKernel = n;
                    Console.Write('.');
                }

                if (gaveUp is not null)
                {
                    cell.Note = gaveUp;
                    run.Warnings.Add($"N={n}: {gaveUp} (killed); this N and larger ones are not measured further");
                    Console.WriteLine($" gave up: {gaveUp}");
                    continue;
                }

                // Change: the target's 4th endpoint replaced by a fake one, then back: pairs, so it ends as desired.
                Console.Write(" change");
                var kernelIsDesired = true;
                budget.Restart();
                for (var r = 0; r < options.Reps && (r == 0 || budget.Elapsed.TotalSeconds < options.SyncBudget); r++)
                {
                    cancel.ThrowIfCancellationRequested();
                    var instance = live;
                    if (!Timed(topo, () => instance.Sync(changed), options.SyncTimeout, cell.Change))
                    {
                        break; // the transaction never committed: the kernel still holds `desired`
                    }

                    kernelIsDesired = false;
                    if (!Timed(topo, () => instance.Sync(desired), options.SyncTimeout, cell.Change))
                    {
                        break;
                    }

                    kernelIsDesired = true;
                    Console.Write('.');
                }

                // Full: a new instance (an agent restart) rewriting everything with the N services in place.
                Console.Write(" full");
                budget.Restart();
                for (var r = 0; r < options.Reps && (r == 0 || budget.Elapsed.TotalSeconds < options.SyncBudget); r++)
                {
                    cancel.ThrowIfCancellationRequested();
                    var instance = make();
                    if (!Timed(topo, () => instance.Sync(desired), options.SyncTimeout, cell.Full))
                    {
                        Retire(instance);
                        break;
                    }

                    Retire(live);
                    live = instance;
                    kernelIsDesired = true;
                    Console.Write('.');
                }

                foreach (var (kind, series) in new[] { ("change", cell.Change), ("full", cell.Full) })
                {
                    if (series.TimedOut > 0)
                    {
                        run.Warnings.Add($"N={n}: a {kind} sync took over {options.SyncTimeout:0} s and was killed ({series.Samples.Count} completed)");
                        Console.Write($" ({kind} killed after {options.SyncTimeout:0} s)");
                    }
                }

                cell.Memory = MemoryNow();
                cell.Kernel = KernelNow(topo, backend, live);
                Console.Write(ebpf
                    ? $" | rss {cell.Memory.RssMb:0} MB, maps: lb4_svc {cell.Kernel.Rules}/{cell.Kernel.SvcMax}, lb4_backends {cell.Kernel.Elements}/{cell.Kernel.BackendMax}"
                    : $" | rss {cell.Memory.RssMb:0} MB, kernel {cell.Kernel.Chains} chains {cell.Kernel.Rules} rules");

                if (!kernelIsDesired)
                {
                    cell.Note = "no load: a change sync was killed with the kernel holding the changed service";
                    run.Warnings.Add($"N={n}: {cell.Note}");
                    Console.WriteLine(" | " + cell.Note);
                    continue;
                }

                Console.Write(" | load");
                var cells = LoadGen.Interleaved(topo.Client, [("service", service), ("direct", direct)], options.Clients, options.Seconds, options.Slices,
                    options.MaxConnections, options.Warmup, ports, cancel);
                cell.Service = cells[0];
                cell.Direct = cells[1];
                CheckLoad(run, $"N={n} service", cell.Service);
                CheckLoad(run, $"N={n} direct", cell.Direct);
                if (cell.Service.PerBackend.Any(c => c == 0))
                {
                    run.Warnings.Add($"N={n}: the service did not reach every backend: {string.Join('/', cell.Service.PerBackend)}");
                }

                Console.WriteLine($" service {cell.Service.Rate:0} / direct {cell.Direct.Rate:0} conn/s");
            }
        }
        finally
        {
            if (ebpf)
            {
                // The tc filters go with the veths when the namespaces are deleted, but the pinned maps live in bpffs:
                // Flush (detaches, clears, unpins) in the node namespace, then remove the directory whatever happened.
                try
                {
                    if (topo.Node is not null)
                    {
                        NetNs.Run(topo.Node, live.Flush);
                    }
                }
                catch (Exception e)
                {
                    Console.Error.WriteLine($"bench: ebpf Flush during cleanup: {e.Message}");
                }

                Retire(live);
                try
                {
                    BpfFs.RemoveTree(pinDir);
                }
                catch (Exception e)
                {
                    Console.Error.WriteLine($"bench: cannot remove {pinDir}: {e.Message}");
                }
            }

            // Deleting the node namespace takes every rule, set and conntrack entry with it; no Flush needed.
            topo.Dispose();
        }

        if (ebpf && (Directory.Exists(pinDir) || File.Exists(pinDir)))
        {
            run.Warnings.Add($"pin directory left after cleanup: {pinDir}");
        }

        var leftover = NetNs.List().Where(n => n.StartsWith(topo.Prefix, StringComparison.Ordinal)).ToList();
        if (leftover.Count > 0)
        {
            run.Warnings.Add($"namespaces left after cleanup: {string.Join(' ', leftover)}");
        }

        run.LoadAverageAtEnd = Machine.Describe().LoadAverage;
        run.TotalSeconds = Math.Round(total.Elapsed.TotalSeconds, 1);
        Console.WriteLine($"  load at the end {run.LoadAverageAtEnd}; {backend} took {run.TotalSeconds:0.0} s");
        return run;
    }

    private static void Retire(IServiceBackend backend) => (backend as IDisposable)?.Dispose();

    /// <summary>Removes /sys/fs/bpf/lbs&lt;pid&gt;-* left by runs whose pid is gone.</summary>
    private static int SweepStalePins()
    {
        if (!Directory.Exists(BpfFs.DefaultRoot))
        {
            return 0;
        }

        var n = 0;
        foreach (var p in Directory.GetFileSystemEntries(BpfFs.DefaultRoot, Base + "*"))
        {
            if (RunPrefix.TryParsePid(Path.GetFileName(p), Base, out var pid) && pid != Environment.ProcessId && !RunPrefix.IsAlive(pid))
            {
                BpfFs.RemoveTree(p);
                n++;
            }
        }

        return n;
    }

    /// <summary>
    /// The lb4 maps have fixed sizes (bpf/lb4.c): N services need N x (1 master + 4 slots) lb4_svc entries, N lb4_revnat
    /// entries and one lb4_backends entry per distinct endpoint. Reads the sizes from lb4.o (loaded once, unpinned) and
    /// replaces an N that does not fit by the largest that does, saying so.
    /// </summary>
    private static List<int> FitEbpf(BackendRun run, string lb4, List<int> services)
    {
        using var probe = BpfObject.Load(lb4);
        var svcMax = (int)probe.Map(LbMaps.Services).MaxEntries;
        var beMax = (int)probe.Map(LbMaps.Backends).MaxEntries;
        var rnMax = (int)probe.Map(LbMaps.ReverseNat).MaxEntries;
        bool Fits(int n)
        {
            var d = Desired(n, changed: true).Concat(Desired(n, changed: false)).ToList();
            var slots = Desired(n, changed: false).Sum(s => 1 + s.Backends.Count);
            var backends = d.SelectMany(s => s.Backends).Distinct().Count();
            return slots <= svcMax && n <= rnMax && backends <= beMax;
        }

        Console.WriteLine($"  maps      lb4_svc {svcMax}, lb4_backends {beMax}, lb4_revnat {rnMax} entries max (bpf/lb4.c)");
        var result = new List<int>();
        foreach (var n in services)
        {
            if (Fits(n))
            {
                result.Add(n);
                continue;
            }

            var lo = 1;
            var hi = n;
            while (lo < hi)
            {
                var mid = (lo + hi + 1) / 2;
                if (Fits(mid))
                {
                    lo = mid;
                }
                else
                {
                    hi = mid - 1;
                }
            }

            var msg = $"N={n} does not fit the lb4 maps ({n} x 5 lb4_svc entries > {svcMax}, or lb4_backends/lb4_revnat full); measured N={lo} instead, the largest that fits";
            run.Warnings.Add(msg);
            Console.WriteLine("  NOTE      " + msg);
            if (!result.Contains(lo))
            {
                result.Add(lo);
            }
        }

        Console.WriteLine($"            N={services.Max()}: {services.Max() * 5} lb4_svc entries: {(Fits(services.Max()) ? "fits" : "does not fit")}");
        return result;
    }

    /// <summary>N services: N-1 fake ones (ClusterIPs 10.96.x.y, endpoints in 10.244.128.0/17, rules only), then the target.</summary>
    public static List<ServicePortState> Desired(int n, bool changed)
    {
        var list = new List<ServicePortState>(n);
        for (var i = 0; i < n - 1; i++)
        {
            var backends = new BackendAddress[SvcTopology.Backends];
            for (var j = 0; j < backends.Length; j++)
            {
                backends[j] = new BackendAddress(Offset(IPAddress.Parse("10.244.128.1"), ((i * 4) + j) % 32000), SvcTopology.BackendPort);
            }

            list.Add(new ServicePortState(
                new ServicePortName("default", string.Create(CultureInfo.InvariantCulture, $"svc-{i:00000}"), null),
                new Frontend(Offset(IPAddress.Parse("10.96.0.10"), i), Protocol.Tcp, ServicePort),
                SessionAffinity.None,
                10800,
                backends));
        }

        // The target sorts last ("default/target" > "default/svc-..."), so it is the last KUBE-SERVICES rule.
        var real = Enumerable.Range(1, SvcTopology.Backends).Select(k => new BackendAddress(SvcTopology.BackendIp(k), SvcTopology.BackendPort)).ToArray();
        if (changed)
        {
            real[^1] = new BackendAddress(IPAddress.Parse("10.244.127.250"), SvcTopology.BackendPort);
        }

        list.Add(new ServicePortState(new ServicePortName("default", "target", null), new Frontend(TargetIp, Protocol.Tcp, ServicePort), SessionAffinity.None, 10800, real));
        return list;
    }

    private static IPAddress Offset(IPAddress a, int by)
    {
        var b = a.GetAddressBytes();
        var v = ((uint)b[0] << 24 | (uint)b[1] << 16 | (uint)b[2] << 8 | b[3]) + (uint)by;
        return new IPAddress([(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v]);
    }

    // The backend is driven where the agent drives it: on a thread inside the node namespace (its iptables-restore
    // or nft child inherits that thread's namespace). The time covers the whole Sync (list, render, apply).
    private static double InNode(SvcTopology topo, Action action) =>
        NetNs.Run(topo.Node, () =>
        {
            var t0 = Stopwatch.GetTimestamp();
            action();
            return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        });

    /// <summary>
    /// Runs <paramref name="action"/> in the node namespace and adds its time to <paramref name="series"/>. If it has not
    /// returned after <paramref name="timeoutSeconds"/>, the tool it is waiting for (iptables-restore/-save or nft, a
    /// child of this process) is killed by pid, the call fails, and the series counts a timeout instead of a sample.
    /// A killed iptables-restore or nft -f never commits: the kernel keeps what it had.
    /// </summary>
    private static bool Timed(SvcTopology topo, Action action, double timeoutSeconds, SyncSeries? series)
    {
        var fired = 0;
        using var dog = new Timer(_ =>
        {
            Volatile.Write(ref fired, 1);
            KillToolChildren();
        }, null, TimeSpan.FromSeconds(timeoutSeconds), Timeout.InfiniteTimeSpan);
        try
        {
            var ms = InNode(topo, action);
            series?.Add(ms);
            return true;
        }
        catch (Exception) when (Volatile.Read(ref fired) == 1)
        {
            if (series is not null)
            {
                series.TimedOut++;
                series.TimeoutSeconds = timeoutSeconds;
            }

            return false;
        }
    }

    // This process's children that are firewall tools (found by parent pid in /proc), killed by pid.
    private static void KillToolChildren()
    {
        var self = Environment.ProcessId;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var close = stat.LastIndexOf(')');
                var comm = stat[(stat.IndexOf('(', StringComparison.Ordinal) + 1)..close];
                var ppid = int.Parse(stat[(close + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
                if (ppid == self && (comm.StartsWith("iptables", StringComparison.Ordinal) || comm.StartsWith("xtables", StringComparison.Ordinal) || comm == "nft"))
                {
                    using var p = Process.GetProcessById(pid);
                    p.Kill();
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                // gone meanwhile
            }
        }
    }

    private static void CheckLoad(BackendRun run, string what, LoadCell cell)
    {
        if (cell.Errors > 0)
        {
            run.Warnings.Add($"{what}: {cell.Errors} failed connection(s) of {cell.Connections + cell.Errors} (first: {cell.FirstError})");
        }

        if (cell.Connections == 0)
        {
            throw new InvalidOperationException($"{what}: no connection to {cell.Address} succeeded (first error: {cell.FirstError})");
        }
    }

    private static string BusyNote(Machine m)
    {
        var one = double.Parse(m.LoadAverage.Split(' ')[0], CultureInfo.InvariantCulture);
        return one > m.Nproc * 0.75
            ? $"\n            NOTE: load {one:0.0} on {m.Nproc} CPUs: the machine is busy with other work; absolute figures are inflated and noisy, the ratios (same run) are what to read"
            : string.Empty;
    }

    private static Memory MemoryNow()
    {
        var status = File.ReadAllLines("/proc/self/status");
        double Kb(string field) => status.Where(l => l.StartsWith(field + ":", StringComparison.Ordinal))
            .Select(l => double.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture)).FirstOrDefault();
        var rss = Kb("VmRSS");
        var peak = Kb("VmHWM");
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        var managed = GC.GetGCMemoryInfo(GCKind.FullBlocking).HeapSizeBytes;
        return new Memory
        {
            RssMb = Math.Round(rss / 1024, 1),
            PeakRssMb = Math.Round(peak / 1024, 1),
            ManagedMb = Math.Round(managed / 1048576.0, 1),
        };
    }

    private static KernelSize KernelNow(SvcTopology topo, string backend, IServiceBackend live) =>
        NetNs.Run(topo.Node, () =>
        {
            var t0 = Stopwatch.GetTimestamp();
            if (live is EbpfServiceBackend eb)
            {
                // ebpf: chains = services (master entries), rules = lb4_svc entries (masters + slots), elements = lb4_backends
                // entries, lines = lb4_revnat entries, bytes = key + value bytes of those, list = one dump of the three maps.
                var obj = eb.Loaded;
                var svcMap = obj.Map<LbServiceKey, LbService>(LbMaps.Services);
                var svc = svcMap.Entries();
                var be = obj.Map<uint, LbBackend>(LbMaps.Backends).Entries();
                var rn = obj.Map<ushort, LbReverseNat>(LbMaps.ReverseNat).Entries();
                var ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                return new KernelSize
                {
                    ListMs = Math.Round(ms, 1),
                    Chains = svc.Count(e => e.Key.Slot == 0),
                    Rules = svc.Count,
                    Elements = be.Count,
                    Lines = rn.Count,
                    Bytes = (svc.Count * (long)(Marshal.SizeOf<LbServiceKey>() + Marshal.SizeOf<LbService>()))
                        + (be.Count * (long)(4 + Marshal.SizeOf<LbBackend>())) + (rn.Count * (long)(2 + Marshal.SizeOf<LbReverseNat>())),
                    SvcMax = (int)svcMap.Map.MaxEntries,
                    BackendMax = (int)obj.Map(LbMaps.Backends).MaxEntries,
                };
            }

            if (backend == "iptables")
            {
                var text = IptablesRestore.Save("nat") + IptablesRestore.Save("filter");
                var ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                var lines = text.Split('\n');
                return new KernelSize
                {
                    ListMs = Math.Round(ms, 1),
                    Bytes = text.Length,
                    Lines = lines.Length,
                    Chains = lines.Count(l => l.StartsWith(':')),
                    Rules = lines.Count(l => l.StartsWith("-A ", StringComparison.Ordinal)),
                };
            }

            var json = Exec("/usr/sbin/nft", "-j", "list", "table", "ip", "kube-proxy");
            var listMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            var size = new KernelSize { ListMs = Math.Round(listMs, 1), Bytes = json.Length };
            using var doc = JsonDocument.Parse(json);
            foreach (var o in doc.RootElement.GetProperty("nftables").EnumerateArray())
            {
                if (o.TryGetProperty("chain", out _))
                {
                    size.Chains++;
                }
                else if (o.TryGetProperty("rule", out _))
                {
                    size.Rules++;
                }
                else if (o.TryGetProperty("map", out var map) && map.TryGetProperty("elem", out var elem))
                {
                    size.Elements += elem.GetArrayLength();
                }
            }

            size.Lines = Exec("/usr/sbin/nft", "list", "table", "ip", "kube-proxy").Count(c => c == '\n');
            return size;
        });

    // Spawned from the calling thread, so the child runs in that thread's network namespace.
    private static string Exec(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return p.ExitCode == 0 ? output : throw new InvalidOperationException($"{file} {string.Join(' ', args)}: exit {p.ExitCode}: {err.GetAwaiter().GetResult()}");
    }

    private static string ToolVersion(string file, string arg)
    {
        try
        {
            return Exec(file, arg).Trim();
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            return "unknown";
        }
    }
}

internal sealed record SvcOptions(
    IReadOnlyList<string> Backends,
    IReadOnlyList<int> Services,
    double Seconds,
    int MaxConnections,
    int Clients,
    int Warmup,
    int Reps,
    double SyncBudget,
    double SyncTimeout,
    int Slices,
    string? Part,
    IReadOnlyList<string> Merge,
    string? Out)
{
    public static SvcOptions Parse(string[] args)
    {
        var o = new SvcOptions(["iptables", "nftables", "ebpf"], [1, 1000, 10000], 2, 20000, 1, 200, 5, 5, 60, 10, null, [], null);
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--merge")
            {
                var files = args.Skip(i + 1).TakeWhile(a => !a.StartsWith("--", StringComparison.Ordinal)).ToList();
                o = o with { Merge = files };
                i += files.Count;
                continue;
            }

            var value = i + 1 < args.Length ? args[i + 1] : throw new ArgumentException($"{args[i]} needs a value");
            o = args[i] switch
            {
                "--backend" => o with
                {
                    Backends = value switch
                    {
                        "iptables" or "nftables" or "ebpf" => [value],
                        "both" => ["iptables", "nftables"],
                        "all" => ["iptables", "nftables", "ebpf"],
                        _ => throw new ArgumentException("--backend is iptables, nftables, ebpf, both (iptables + nftables) or all"),
                    },
                },
                "--services" => o with { Services = value.Split(',').Select(s => BenchArgs.Count(s, 1, 30000)).ToArray() },
                "--seconds" => o with { Seconds = Number(value, 0.2, 30) },
                "--max-connections" => o with { MaxConnections = BenchArgs.Count(value, 100, 1000000) },
                "--clients" => o with { Clients = BenchArgs.Count(value, 1, 16) },
                "--warmup" => o with { Warmup = BenchArgs.Count(value, 0, 10000) },
                "--reps" => o with { Reps = BenchArgs.Count(value, 1, 100) },
                "--sync-budget" => o with { SyncBudget = Number(value, 0, 600) },
                "--sync-timeout" => o with { SyncTimeout = Number(value, 1, 3600) },
                "--slices" => o with { Slices = BenchArgs.Count(value, 1, 1000) },
                "--part" => o with { Part = value },
                "--out" => o with { Out = value },
                _ => throw new ArgumentException(
                    $"unknown option {args[i]} (--backend iptables|nftables|ebpf|both|all, --services 1,1000,10000, --seconds S, --max-connections N, --clients N, --warmup N, --reps N, --sync-budget S, --sync-timeout S, --slices N, --part FILE, --merge FILE..., --out FILE)"),
            };
            i++;
        }

        return o;
    }

    private static double Number(string s, double min, double max) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
            ? n
            : throw new ArgumentException($"'{s}' is not a number in {min}..{max}");
}
