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
/// --logger "console;verbosity=detailed"</c>.
/// </summary>
[Trait("Category", "SyncPerf")]
public sealed class SyncPerfTests(ITestOutputHelper output)
{
    [SyncPerfFact]
    public void Iptables() => Measure("iptables", ServiceBackends.Iptables);

    [SyncPerfFact]
    public void Nftables() => Measure("nftables", ServiceBackends.Nftables);

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
                var desired = Services(n, 0);
                var changed = Services(n, 1);
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

    private static IEnumerable<int> Sizes() =>
        Environment.GetEnvironmentVariable("LOOM_SYNC_PERF")!.Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture));

    private static double Ms(Action action)
    {
        var sw = Stopwatch.StartNew();
        action();
        return sw.Elapsed.TotalMilliseconds;
    }

    private void Report(string name, int n, string what, double[] ms)
    {
        Array.Sort(ms);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name,-9} N={n,-6} {what,-22} p50 {ms[ms.Length / 2],9:F3} ms  max {ms[^1],9:F3} ms  ({ms.Length}x)"));
    }

    private void Measure(string name, Func<ServiceProxyOptions?, IServiceBackend> create)
    {
        foreach (var n in Sizes())
        {
            using var ns = new TestNetns("perf");
            var desired = Services(n, 0);
            var b = create(null);
            Time(ns, name, n, "first (empty kernel)", () => b.Sync(desired));
            Dump(b, $"{name}-{n}-first");
            Time(ns, name, n, "no-op resync", () => b.Sync(desired));
            var changed = Services(n, 1);
            Time(ns, name, n, "one service changed", () => b.Sync(changed));
            var fewer = changed.Skip(1).ToList();
            Time(ns, name, n, "one service removed", () => b.Sync(fewer));
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

    // N services with two backends each; <paramref name="bump"/> moves service 0's second backend.
    private static List<ServicePortState> Services(int n, int bump) =>
        Enumerable.Range(0, n).Select(i =>
        {
            var ip = new IPAddress([10, 96, (byte)(i / 250), (byte)(i % 250 + 1)]);
            var b1 = new Backend(new IPAddress([10, 244, (byte)(i / 250), (byte)(i % 250 + 1)]), 8080);
            var b2 = new Backend(new IPAddress([10, 245, (byte)(i / 250), (byte)((i % 250) + 1 + (i == 0 ? bump : 0))]), 8080);
            return new ServicePortState(
                new ServicePortName("perf", "svc" + i.ToString(CultureInfo.InvariantCulture), "http"),
                new Frontend(ip, Protocol.Tcp, 80),
                SessionAffinity.None,
                10800,
                [b1, b2]);
        }).ToList();
}
