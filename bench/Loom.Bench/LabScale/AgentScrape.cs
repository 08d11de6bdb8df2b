using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Loom.Linux;

namespace Loom.Bench.LabScale;

/// <summary>
/// Reads a lab agent's Prometheus endpoint (<c>metricsAddress</c> = the node's IP:9962, which the lab sets) from the
/// bench, which stays in the root namespace: every connection's socket is created on a thread inside the node's
/// namespace, so nothing is reachable but the lab.
/// </summary>
internal sealed class AgentScrape : IDisposable
{
    public const int MetricsPort = 9962;
    private readonly NetNsHandle _ns;
    private readonly HttpClient _http;
    private readonly Uri _uri;

    public AgentScrape(string netns, string nodeIp)
    {
        _ns = NetNs.Open(netns);
        _uri = new Uri(string.Create(CultureInfo.InvariantCulture, $"http://{nodeIp}:{MetricsPort}/metrics"));
        var handler = NetNsHttpHandler.Create(_ns);
        handler.PooledConnectionLifetime = TimeSpan.FromSeconds(30);
        _http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(10) };
    }

    /// <summary>The exposition text, or null if the agent does not answer (busy, restarting) within the timeout.</summary>
    public async Task<PromText?> TryReadAsync(CancellationToken ct)
    {
        try
        {
            return PromText.Parse(await _http.GetStringAsync(_uri, ct).ConfigureAwait(false));
        }
        catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            return null;
        }
    }

    public void Dispose()
    {
        _http.Dispose();
        _ns.Dispose();
    }
}

/// <summary>Samples of a Prometheus text exposition: <c>name{labels} value</c> lines.</summary>
internal sealed class PromText
{
    private readonly List<(string Name, string Labels, double Value)> _samples = [];

    public static PromText Parse(string text)
    {
        var p = new PromText();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var brace = line.IndexOf('{', StringComparison.Ordinal);
            var space = line.LastIndexOf(' ');
            if (space <= 0)
            {
                continue;
            }

            var name = brace > 0 && brace < space ? line[..brace] : line[..space].Trim();
            var labels = brace > 0 && brace < space ? line[(brace + 1)..line.LastIndexOf('}')] : "";
            if (double.TryParse(line[(space + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
            {
                p._samples.Add((name, labels, v));
            }
        }

        return p;
    }

    /// <summary>Sum over every label set of a gauge or counter; null if the agent does not export it.</summary>
    public double? Value(string name)
    {
        var hits = _samples.Where(s => s.Name == name).ToList();
        return hits.Count == 0 ? null : hits.Sum(s => s.Value);
    }

    /// <summary>A histogram's cumulative buckets (upper bound -> count), summed over its label sets; null if absent.</summary>
    public Histogram? Histogram(string name)
    {
        var buckets = new SortedDictionary<double, double>();
        foreach (var (_, labels, value) in _samples.Where(s => s.Name == name + "_bucket"))
        {
            var le = labels.Split(',').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("le=", StringComparison.Ordinal));
            if (le is null)
            {
                continue;
            }

            var bound = le[3..].Trim('"') is "+Inf" ? double.PositiveInfinity : double.Parse(le[3..].Trim('"'), CultureInfo.InvariantCulture);
            buckets[bound] = buckets.GetValueOrDefault(bound) + value;
        }

        return buckets.Count == 0 ? null : new Histogram(buckets);
    }
}

/// <summary>Cumulative histogram buckets (upper bound in seconds -> observations at or below it).</summary>
internal sealed record Histogram(SortedDictionary<double, double> Buckets)
{
    public double Count => Buckets.Count == 0 ? 0 : Buckets.Values.Last();

    /// <summary>What was observed after <paramref name="before"/> (the same agent, read earlier).</summary>
    public Histogram Since(Histogram? before) =>
        new(new SortedDictionary<double, double>(Buckets.ToDictionary(b => b.Key, b => b.Value - (before?.Buckets.GetValueOrDefault(b.Key) ?? 0))));

    /// <summary>
    /// The upper bound of the bucket holding the nearest-rank quantile (what a bucketed histogram can say: "at most"),
    /// in seconds; NaN without observations, +Inf when it falls past the last finite bucket.
    /// </summary>
    public double Quantile(double q)
    {
        if (Count <= 0)
        {
            return double.NaN;
        }

        var rank = Math.Max(1, Math.Ceiling(q * Count));
        return Buckets.First(b => b.Value >= rank).Key;
    }
}
