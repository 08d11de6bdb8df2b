using System.Globalization;
using System.Net;

namespace Loom.Lab.Migration;

/// <summary>What one probe process asks, and how often.</summary>
public sealed record ProbeTarget(IPEndPoint Http, IPEndPoint? Dns, string DnsName)
{
    public TimeSpan Interval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>A request not answered in this time counts as failed.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(2);
}

/// <summary>
/// The migration's probe, run as a process in a node's host namespace (and its cgroup, so an eBPF socket load
/// balancer serves it as it serves the node's own processes): every interval an HTTP request to the Service and a
/// DNS lookup of its name, each on a new socket, started on schedule even while earlier ones are still waiting. Each
/// result is a line of <see cref="ProbeResult"/>, flushed at once, so a reader sees it and a crash loses nothing.
/// </summary>
public static class ProbeLoop
{
    public static async Task RunAsync(ProbeTarget target, TextWriter results, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(results);
        var gate = new SemaphoreSlim(1, 1);
        var inFlight = new List<Task>();
        using var timer = new PeriodicTimer(target.Interval);
        do
        {
            inFlight.RemoveAll(t => t.IsCompleted);
            inFlight.Add(OneAsync("http", async () => await ProbeRequests.HttpGetAsync(ProbeRequests.Tcp, target.Http, target.Timeout, ct).ConfigureAwait(false)));
            if (target.Dns is { } dns)
            {
                inFlight.Add(OneAsync("dns", async () => string.Join(",", await ProbeRequests.DnsLookupAsync(ProbeRequests.Udp, dns, target.DnsName, target.Timeout, ct)
                    .ConfigureAwait(false))));
            }
        }
        while (await Tick(timer, ct).ConfigureAwait(false));

        await Task.WhenAll(inFlight).ConfigureAwait(false);

        async Task OneAsync(string kind, Func<Task<string>> request)
        {
            var started = DateTimeOffset.UtcNow;
            ProbeResult result;
            try
            {
                result = new(started, kind, true, await request().ConfigureAwait(false));
            }
            catch (ProbeException e)
            {
                result = new(started, kind, false, e.Message);
            }
            catch (OperationCanceledException)
            {
                return; // stopped while waiting: neither an answer nor a failure
            }

            await gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                await results.WriteLineAsync(result.ToLine()).ConfigureAwait(false);
                await results.FlushAsync(CancellationToken.None).ConfigureAwait(false);
            }
            finally
            {
                gate.Release();
            }
        }
    }

    private static async Task<bool> Tick(PeriodicTimer timer, CancellationToken ct)
    {
        try
        {
            return await timer.WaitForNextTickAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}

/// <summary>One probe request: when it started, http or dns, whether it was answered, and the answer or the failure.</summary>
public sealed record ProbeResult(DateTimeOffset Started, string Kind, bool Ok, string Detail)
{
    public string ToLine() => string.Create(CultureInfo.InvariantCulture, $"{Started.ToUnixTimeMilliseconds()}\t{Kind}\t{(Ok ? "ok" : "fail")}\t{Detail.ReplaceLineEndings(" ")}");

    /// <summary>A line as <see cref="ToLine"/> writes it; null for a line cut short (the process was killed mid-write).</summary>
    public static ProbeResult? Parse(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var f = line.Split('\t', 4);
        return f.Length == 4 && long.TryParse(f[0], NumberStyles.None, CultureInfo.InvariantCulture, out var ms) && f[2] is "ok" or "fail"
            ? new(DateTimeOffset.FromUnixTimeMilliseconds(ms), f[1], f[2] == "ok", f[3])
            : null;
    }
}
