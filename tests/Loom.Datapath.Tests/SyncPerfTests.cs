using System.Diagnostics;
using System.Globalization;
using System.Net;
using Loom.Core.Model;
using Loom.Datapath.Services;
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

    private void Measure(string name, Func<ServiceProxyOptions?, IServiceBackend> create)
    {
        var sizes = Environment.GetEnvironmentVariable("LOOM_SYNC_PERF")!.Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture));
        foreach (var n in sizes)
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
