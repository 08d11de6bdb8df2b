using System.Diagnostics;
using System.Net;
using Loom.Testing;
using Xunit.Abstractions;

namespace Loom.Cni.Tests;

/// <summary>
/// 100 ADDs at once, each its own plugin process (as kubelet/containerd would start them), into 100 pod
/// namespaces on one node; then 100 DELs at once.
/// </summary>
public sealed class ConcurrencyTests(ITestOutputHelper output) : IDisposable
{
    private const int Pods = 100;
    private readonly CniNode _node = new("10.245.0.0/24");

    public void Dispose() => _node.Dispose();

    [Fact]
    public void Hundred_parallel_adds_get_distinct_addresses_and_hundred_parallel_dels_leave_nothing()
    {
        var conf = _node.Conf(edit: c => c["isDefaultGateway"] = true).ToJsonString();
        var pods = Enumerable.Range(0, Pods).Select(i => _node.NewPod("c")).ToArray();

        var sw = Stopwatch.StartNew();
        var adds = InParallel(i => _node.Exec("ADD", conf, $"conc-{i}", pods[i]));
        output.WriteLine($"{Pods} parallel ADDs: {sw.ElapsedMilliseconds} ms");
        Assert.All(adds, r => Assert.True(r.Ok, r.ToString()));

        var ips = adds.Select(r => CniNode.IpOf(AddResultShapeTests.Parse(r.Stdout))).ToArray();
        Assert.Equal(Pods, ips.Distinct().Count());
        Assert.All(ips, ip => Assert.StartsWith("10.245.0.", ip, StringComparison.Ordinal));
        Assert.DoesNotContain("10.245.0.1", ips); // the gateway is never handed out
        Assert.Equal(ips.Order(StringComparer.Ordinal), _node.IpamFiles().Order(StringComparer.Ordinal));
        Assert.Equal(Pods, _node.BridgePorts().Count);
        for (var i = 0; i < Pods; i++)
        {
            var eth0 = pods[i].Netlink.LinkByName("eth0");
            Assert.NotNull(eth0);
            Assert.Contains(pods[i].Netlink.AddrList(eth0.Index), a => a.Ip.Equals(IPAddress.Parse(ips[i])));
        }

        Assert.Single(_node.Netlink.AddrList(_node.Bridge().Index, System.Net.Sockets.AddressFamily.InterNetwork));

        sw.Restart();
        var dels = InParallel(i => _node.Exec("DEL", conf, $"conc-{i}", pods[i]));
        output.WriteLine($"{Pods} parallel DELs: {sw.ElapsedMilliseconds} ms");
        Assert.All(dels, r => Assert.True(r.Ok, r.ToString()));
        Assert.Empty(_node.IpamFiles());
        Assert.Empty(_node.BridgePorts());
        Assert.All(pods, p => Assert.Null(p.Netlink.LinkByName("eth0")));
    }

    /// <summary>One dedicated thread per call, released together: the thread pool would start them slowly.</summary>
    private static CniRun[] InParallel(Func<int, CniRun> run) => InParallel(Pods, run);

    internal static CniRun[] InParallel(int count, Func<int, CniRun> run)
    {
        var results = new CniRun[count];
        var errors = new Exception?[count];
        using var start = new ManualResetEventSlim();
        var threads = Enumerable.Range(0, count).Select(i => new Thread(() =>
        {
            start.Wait();
            try
            {
                results[i] = run(i);
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException or System.ComponentModel.Win32Exception)
            {
                errors[i] = e;
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        start.Set();
        threads.ForEach(t => t.Join());
        Assert.All(errors, Assert.Null);
        return results;
    }
}
