using System.Diagnostics;
using System.Globalization;
using System.Net;
using Loom.Core.Model;
using Loom.Datapath.Services;
using Loom.Datapath.Services.Ebpf;
using Loom.Datapath.Tests.Ebpf;
using Loom.Linux.Bpf;
using Loom.Testing;
using Xunit.Abstractions;

namespace Loom.Datapath.Tests;

/// <summary>Runs only when LOOM_SYNC_PERF is set (e.g. LOOM_SYNC_PERF=1000,4000): a micro-benchmark, never in CI.</summary>
internal sealed class SyncPerfFactAttribute : FactAttribute
{
    public SyncPerfFactAttribute()
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("LOOM_SYNC_PERF")))
        {
            Skip = "micro-benchmark: set LOOM_SYNC_PERF=1000,4000 to run";
        }
    }
}

/// <summary>
/// Times syncs at large N inside a throwaway namespace and prints the figures; asserts nothing about time. Run with
/// <c>LOOM_SYNC_PERF=1000,4000 dotnet test tests/Loom.Datapath.Tests -c Release --no-build --filter Category=SyncPerf
/// --logger "console;verbosity=detailed"</c>. LOOM_SYNC_PERF_ENDPOINTS sets the endpoints per service (4, as in
/// bench/services.sh); LOOM_SYNC_PERF_NO_RESTART=1 stops after the removal (a restart at 10000 can take minutes).
/// </summary>
[Trait("Category", "SyncPerf")]
public sealed class SyncPerfTests(ITestOutputHelper output)
{
    [SyncPerfFact]
    public void Iptables() => Measure("iptables", o => new IptablesServiceBackend(o ?? new ServiceProxyOptions()) { KeepLastInput = true });

    [SyncPerfFact]
    public void Nftables() => Measure("nftables", o => new NftablesServiceBackend(o ?? new ServiceProxyOptions()) { KeepLastInput = true });

    /// <summary>
    /// eBPF at each N: the first sync, then one endpoint of one service moved back and forth (p50 / max over 101 syncs),
    /// the same with a full pass forced each time (what every sync cost before syncs became incremental), a restart.
    /// No namespace needed: nothing is attached, the maps are pinned in a directory of this run's own.
    /// </summary>
    [SyncPerfFact]
    public void Ebpf()
    {
        foreach (var n in Sizes())
        {
            var pins = Path.Combine(BpfFs.DefaultRoot, EbpfLab.UniqueName("perf"));
            var options = new EbpfServiceOptions { PinDirectory = pins, ObjectDirectory = EbpfLab.ObjectDirectory };
            try
            {
                using var b = new EbpfServiceBackend(options);
                var desired = Services(n, 0, Endpoints());
                var changed = Services(n, 1, Endpoints());
                Report("ebpf", n, "first (empty maps)", [Ms(() => b.Sync(desired))]);
                Report("ebpf", n, "no-op resync", [.. Enumerable.Range(0, 101).Select(_ => Ms(() => b.Sync(desired)))]);
                Report("ebpf", n, "one endpoint changed", [.. Enumerable.Range(0, 101).Select(i => Ms(() => b.Sync(i % 2 == 0 ? changed : desired)))]);
                Report("ebpf", n, "same, full pass", [.. Enumerable.Range(0, 5).Select(i => Ms(() =>
                {
                    b.RequestFullResync();
                    b.Sync(i % 2 == 0 ? changed : desired);
                }))]);
                Report("ebpf", n, "one service removed", [Ms(() => b.Sync(desired.Skip(1).ToList()))]);
                using var restarted = new EbpfServiceBackend(options);
                Report("ebpf", n, "restart (adopt)", [Ms(() => restarted.Sync(desired))]);
                Report("ebpf", n, "flush", [Ms(restarted.Flush)]);
            }
            finally
            {
                BpfFs.RemoveTree(pins);
            }
        }
    }

    /// <summary>
    /// The C# share of one iptables partial sync at each N (no kernel): rendering one endpoint change against what was
    /// applied, and recording the new state as applied (p50 over 11 runs, after a warm-up), in wall and in CPU time.
    /// </summary>
    [SyncPerfFact]
    public void IptablesPartialRender()
    {
        foreach (var n in Sizes())
        {
            var desired = Services(n, 0, Endpoints());
            var changed = Services(n, 1, Endpoints());
            var options = new ServiceProxyOptions();
            var applied = new AppliedServices(IptablesRules.ServiceChain);
            applied.Record(desired, true);
            IptablesRules.RenderPartial(changed, applied.Services, options); // JIT
            Report("iptables", n, "render one change", [.. Enumerable.Range(0, 11).Select(_ => Ms(() => IptablesRules.RenderPartial(changed, applied.Services, options)))]);
            Report("iptables", n, "record as applied", [.. Enumerable.Range(0, 11).Select(_ => Ms(() => applied.Record(desired, false)))]);
            Report("iptables", n, "render (CPU ms)", [.. Enumerable.Range(0, 11).Select(_ => Cpu(() => IptablesRules.RenderPartial(changed, applied.Services, options)))]);
            Report("iptables", n, "record (CPU ms)", [.. Enumerable.Range(0, 11).Select(_ => Cpu(() => applied.Record(desired, false)))]);
        }
    }

    /// <summary>
    /// The model at each N: N Services (a selector each) over N x endpoints ready pods in one namespace, as the agent
    /// computes them on a pass; p50 over a few runs. No kernel involved.
    /// </summary>
    [SyncPerfFact]
    public void Model()
    {
        foreach (var n in Sizes())
        {
            var perService = Endpoints();
            var services = Enumerable.Range(0, n).Select(i => new Service
            {
                Namespace = "perf", Name = "svc" + i.ToString(CultureInfo.InvariantCulture),
                ClusterIp = new IPAddress([10, 96, (byte)(i / 250), (byte)(i % 250 + 1)]),
                Ports = [new ServicePort("http", Protocol.Tcp, 80, 8080)],
                Selector = new Dictionary<string, string> { ["app"] = "svc" + i.ToString(CultureInfo.InvariantCulture) },
            }).ToList();
            var pods = Enumerable.Range(0, n * perService).Select(j => new Endpoint
            {
                Namespace = "perf", Name = "pod" + j.ToString(CultureInfo.InvariantCulture), Node = "n1", ContainerId = "c" + j.ToString(CultureInfo.InvariantCulture),
                IPs = [new IPAddress([10, (byte)(244 + (j / 62500)), (byte)(j / 250 % 250), (byte)(j % 250 + 1)])],
                Labels = new Dictionary<string, string> { ["app"] = "svc" + (j % n).ToString(CultureInfo.InvariantCulture), ["tier"] = "web" },
                Ready = true,
            }).ToList();
            ServiceModel.Compute(services, pods); // JIT
            Report("model", n, $"compute ({n * perService} pods)", [.. Enumerable.Range(0, 5).Select(_ => Ms(() => ServiceModel.Compute(services, pods)))]);
        }
    }

    private static IEnumerable<int> Sizes() =>
        Environment.GetEnvironmentVariable("LOOM_SYNC_PERF")!.Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture));

    private static int Endpoints() =>
        int.Parse(Environment.GetEnvironmentVariable("LOOM_SYNC_PERF_ENDPOINTS") ?? "4", CultureInfo.InvariantCulture);

    private static double Ms(Action action)
    {
        var sw = Stopwatch.StartNew();
        action();
        return sw.Elapsed.TotalMilliseconds;
    }

    // The process's CPU time (all threads, GC included): on a loaded machine wall time is mostly waiting for a CPU.
    private static double Cpu(Action action)
    {
        using var self = Process.GetCurrentProcess();
        var before = self.TotalProcessorTime;
        action();
        self.Refresh();
        return (self.TotalProcessorTime - before).TotalMilliseconds;
    }

    private void Report(string name, int n, string what, double[] ms)
    {
        Array.Sort(ms);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name,-9} N={n,-6} {what,-22} p50 {ms[ms.Length / 2],9:F3} ms  max {ms[^1],9:F3} ms  ({ms.Length}x)"));
    }

    private void Measure(string name, Func<ServiceProxyOptions?, IServiceBackend> create)
    {
        var endpoints = Endpoints();
        var restart = Environment.GetEnvironmentVariable("LOOM_SYNC_PERF_NO_RESTART") != "1";
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{endpoints} endpoints per service; load average {File.ReadAllText("/proc/loadavg").Trim()}"));
        foreach (var n in Sizes())
        {
            using var ns = new TestNetns("perf");
            var desired = Services(n, 0, endpoints);
            var b = create(null);
            if (b is NftablesServiceBackend)
            {
                // The C# share of a first sync: what the renderer costs without nft (the first call includes the JIT).
                Time(ns, name, n, "render only (cold)", () => NftablesRules.Render(desired, _ => true, NftSnapshot.Missing, true, new ServiceProxyOptions()));
                Time(ns, name, n, "render only (warm)", () => NftablesRules.Render(desired, _ => true, NftSnapshot.Missing, true, new ServiceProxyOptions()));
            }

            Time(ns, name, n, "first (empty kernel)", () => b.Sync(desired));
            Dump(b, $"{name}-{n}-first");
            Time(ns, name, n, "no-op resync", () => b.Sync(desired));
            var changed = Services(n, 1, endpoints);
            Time(ns, name, n, "one service changed", () => b.Sync(changed));
            // Back and forth again: the first change of a process also pays for JIT tiering.
            Time(ns, name, n, "one changed (2nd)", () => b.Sync(desired));
            Time(ns, name, n, "one changed (3rd)", () => b.Sync(changed));
            var fewer = changed.Skip(1).ToList();
            Time(ns, name, n, "one service removed", () => b.Sync(fewer));
            if (!restart)
            {
                continue;
            }

            var restarted = create(null);
            Time(ns, name, n, "restart (adopt)", () => restarted.Sync(desired));
            Dump(restarted, $"{name}-{n}-restart");
            Time(ns, name, n, "flush", restarted.Flush);
        }
    }

    // LOOM_SYNC_PERF_DUMP=DIR keeps the batches for replaying by hand (in a namespace of one's own).
    private static void Dump(IServiceBackend b, string what)
    {
        var dir = Environment.GetEnvironmentVariable("LOOM_SYNC_PERF_DUMP");
        var text = b switch
        {
            IptablesServiceBackend i => i.LastRestoreInput,
            NftablesServiceBackend f => f.LastScript,
            _ => null,
        };
        if (!string.IsNullOrEmpty(dir) && text is not null)
        {
            File.WriteAllText(Path.Combine(dir, what + ".txt"), text);
        }
    }

    private void Time(TestNetns ns, string name, int n, string what, Action action)
    {
        var ms = ns.Run(() =>
        {
            var sw = Stopwatch.StartNew();
            action();
            return sw.ElapsedMilliseconds;
        });
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name,-9} N={n,-6} {what,-22} {ms,7} ms"));
    }

    // N services with <paramref name="endpoints"/> backends each (10.244+k.x.y); <paramref name="bump"/> moves service
    // 0's last backend.
    private static List<ServicePortState> Services(int n, int bump, int endpoints) =>
        Enumerable.Range(0, n).Select(i =>
        {
            var ip = new IPAddress([10, 96, (byte)(i / 250), (byte)(i % 250 + 1)]);
            var backends = Enumerable.Range(0, endpoints).Select(k =>
            {
                var last = (byte)((i % 250) + 1 + (i == 0 && k == endpoints - 1 ? bump : 0));
                return new BackendAddress(new IPAddress([10, (byte)(244 + k), (byte)(i / 250), last]), 8080);
            }).ToList();
            return new ServicePortState(
                new ServicePortName("perf", "svc" + i.ToString(CultureInfo.InvariantCulture), "http"),
                new Frontend(ip, Protocol.Tcp, 80),
                SessionAffinity.None,
                10800,
                backends);
        }).ToList();
}
