using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Loom.Linux;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Loom.Lab.Tests;

/// <summary>
/// Runs a lab's checks in sequence and keeps going after a failure, so one run tells which parts of a network
/// combination work; the test fails at the end with every failed check named.
/// </summary>
public sealed class NetworkChecks(string what, ITestOutputHelper output)
{
    private readonly List<string> _failed = [];

    public async Task Check(string name, Func<Task> check)
    {
        ArgumentNullException.ThrowIfNull(check);
        try
        {
            await check();
            output.WriteLine($"{what}: {name}: ok");
        }
        catch (Exception e) when (e is XunitException or SocketException or OperationCanceledException or LabException or LinuxException or IOException
                                      or InvalidOperationException or FormatException)
        {
            _failed.Add($"{name}: {e.Message}");
            output.WriteLine($"{what}: {name}: FAILED: {e.Message}");
        }
    }

    /// <summary>Fails with every failed check.</summary>
    public void AssertAllPassed() => Assert.True(_failed.Count == 0, $"{what}: {_failed.Count} check(s) failed:\n" + string.Join("\n", _failed));

    /// <summary>Retries <paramref name="attempt"/> until it succeeds or <paramref name="within"/> has passed; then its last error stands.</summary>
    public static async Task<T> Within<T>(TimeSpan within, Func<Task<T>> attempt)
    {
        ArgumentNullException.ThrowIfNull(attempt);
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            try
            {
                return await attempt();
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or XunitException && DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }
        }
    }

    /// <summary>TCP and UDP from one pod to another (both serving through <see cref="ServiceTests.Serve"/>): each answers with its name.</summary>
    public static async Task PodToPodAsync(LabPod from, LabPod to)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        using var ns = NetNs.Open(from.Netns);
        var ip = ExternalServer.PodIp(to);
        var path = $"{from.Name} ({from.Ip} on {from.Node}) -> {to.Name} ({to.Ip} on {to.Node})";
        try
        {
            Assert.Equal(to.Name, await Within(TimeSpan.FromSeconds(10), () => ServiceTests.TcpAsync(ns, new IPEndPoint(ip, 8080))));
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            throw new XunitException($"TCP {path}:8080: {e.Message}");
        }

        using var udp = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var answer = await ServiceTests.UdpAsync(ns, new IPEndPoint(ip, 5353), "q").WaitAsync(udp.Token)
            .ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : null, TaskScheduler.Default);
        Assert.True(answer == to.Name, $"UDP {path}:5353: answer {answer ?? "none in 10 s"}");
    }

    /// <summary>Whether a link of that name exists in the namespace.</summary>
    public static async Task<bool> LinkExistsAsync(string netns, string device)
    {
        var (code, _, _) = await LabProcesses.CaptureAsync(netns, ["ip", "link", "show", device]);
        return code == 0;
    }

    /// <summary>Packets the host's netfilter FORWARD chain counted between two pods, on one node (the rules a test inserted with <see cref="CountForwardAsync"/>).</summary>
    public static async Task<long> ForwardedAsync(string nodeNetns)
    {
        var listing = await TestLab.Capture(nodeNetns, "iptables", "-t", "filter", "-L", "FORWARD", "-v", "-x", "-n");
        return listing.Split('\n').Where(l => l.Contains(CountComment, StringComparison.Ordinal))
            .Sum(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0], CultureInfo.InvariantCulture));
    }

    /// <summary>Inserts, first in FORWARD, a rule with no target per direction between two pods: it only counts.</summary>
    public static async Task CountForwardAsync(string nodeNetns, LabPod a, LabPod b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        foreach (var (s, d) in new[] { (a, b), (b, a) })
        {
            await TestLab.Capture(nodeNetns, "iptables", "-t", "filter", "-I", "FORWARD", "1", "-s", ExternalServer.PodIp(s).ToString(), "-d", ExternalServer.PodIp(d).ToString(),
                "-m", "comment", "--comment", CountComment);
        }
    }

    private const string CountComment = "loom-test-pod-to-pod";
}
