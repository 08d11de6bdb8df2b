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
    /// <summary>
    /// Probes until <paramref name="ct"/> is cancelled; then stops starting requests and waits for the ones under way
    /// (each ends by its own timeout), so a failure just before the stop is still written.
    /// </summary>
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
            inFlight.Add(OneAsync("http", async () => await ProbeRequests.HttpGetAsync(ProbeRequests.Tcp, target.Http, target.Timeout, CancellationToken.None)
                .ConfigureAwait(false)));
            if (target.Dns is { } dns)
            {
                inFlight.Add(OneAsync("dns", async () => string.Join(",", await ProbeRequests.DnsLookupAsync(ProbeRequests.Udp, dns, target.DnsName, target.Timeout,
                    CancellationToken.None).ConfigureAwait(false))));
            }
        }
        while (await Tick(timer, ct).ConfigureAwait(false));

        await Task.WhenAll(inFlight).ConfigureAwait(false);

        async Task OneAsync(string kind, Func<Task<string>> request)
        {
            await Task.Yield(); // the socket is made off the ticking loop
            var started = DateTimeOffset.UtcNow;
            var sw = System.Diagnostics.Stopwatch.StartNew();
            ProbeResult result;
            try
            {
                result = new(started, kind, true, await request().ConfigureAwait(false)) { Millis = (int)sw.ElapsedMilliseconds };
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A ProbeException names the stage; anything else (a reply cut short, no socket left) fails the request too.
                result = new(started, kind, false, e is ProbeException ? e.Message : $"{kind}: {e.GetType().Name}: {e.Message}") { Millis = (int)sw.ElapsedMilliseconds };
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
    /// <summary>How long the request took: an answer after a retransmitted SYN (1 s) counts, but shows.</summary>
    public int Millis { get; init; }

    public string ToLine() => string.Create(CultureInfo.InvariantCulture,
        $"{Started.ToUnixTimeMilliseconds()}\t{Kind}\t{(Ok ? "ok" : "fail")}\t{Millis}\t{Detail.ReplaceLineEndings(" ")}");

    /// <summary>A line as <see cref="ToLine"/> writes it; null for a line cut short (the process was killed mid-write).</summary>
    public static ProbeResult? Parse(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var f = line.Split('\t', 5);
        return f.Length == 5 && long.TryParse(f[0], NumberStyles.None, CultureInfo.InvariantCulture, out var ms) && f[2] is "ok" or "fail"
               && int.TryParse(f[3], NumberStyles.None, CultureInfo.InvariantCulture, out var took)
            ? new(DateTimeOffset.FromUnixTimeMilliseconds(ms), f[1], f[2] == "ok", f[4]) { Millis = took }
            : null;
    }
}
