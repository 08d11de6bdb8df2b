using System.Globalization;

namespace Loom.Core.Services;

/// <summary>
/// Hands out node ports from the API server's range (--service-node-port-range, 30000-32767 by default) the way it
/// does: a requested port if it is in range and free, else a random free one, tried first above a low band that is
/// left to requests (upstream's offset split: size/32, 16 to 128 ports), so a Service asking for a low port rarely
/// finds it taken. Pure logic over the set of ports taken; who holds which is <see cref="NodePortPool"/>'s.
/// </summary>
public sealed class NodePortAllocator
{
    public const int DefaultMin = 30000;
    public const int DefaultMax = 32767;

    public NodePortAllocator(int min = DefaultMin, int max = DefaultMax)
    {
        if (min < 1 || max > 65535 || min > max)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"node-port range {min}-{max} is not within 1-65535"), nameof(min));
        }

        Min = min;
        Max = max;
        var size = max - min + 1;
        StaticBand = Math.Min(Math.Max(16, size / 32), 128);
        if (StaticBand >= size)
        {
            StaticBand = 0;
        }
    }

    public static NodePortAllocator Default { get; } = new();

    public int Min { get; }

    public int Max { get; }

    /// <summary>How many ports at the bottom of the range a random pick tries only when the rest is full.</summary>
    public int StaticBand { get; }

    public int Size => Max - Min + 1;

    /// <summary>The range as the API server prints it: "30000-32767".</summary>
    public string RangeText => string.Create(CultureInfo.InvariantCulture, $"{Min}-{Max}");

    public bool Contains(int port) => port >= Min && port <= Max;

    /// <summary>
    /// Returns <paramref name="requested"/> if it is in range and not in <paramref name="used"/>, or (0 requested) a
    /// random free port. <paramref name="field"/> names the field in the error, as the API server does.
    /// </summary>
    /// <exception cref="NodePortAllocationException">the request is taken or out of range, or the range is full.</exception>
    public int Allocate(IReadOnlySet<int> used, int requested = 0, string field = "spec.ports[0].nodePort", Random? random = null)
    {
        ArgumentNullException.ThrowIfNull(used);
        if (requested != 0)
        {
            Check(used, requested, field);
            return requested;
        }

        random ??= Random.Shared;
        // Dynamic picks prefer the upper band; the lower one is the fallback once the upper is full.
        return Pick(used, Min + StaticBand, Max, random) ?? Pick(used, Min, Min + StaticBand - 1, random)
            ?? throw new NodePortAllocationException(NodePortAllocationError.Exhausted, 0,
                $"{field}: failed to allocate a nodePort: range is full (every port of {RangeText} is allocated)");
    }

    /// <summary>Throws unless <paramref name="requested"/> is in range and not in <paramref name="used"/>.</summary>
    /// <exception cref="NodePortAllocationException">the request is taken or out of range.</exception>
    public void Check(IReadOnlySet<int> used, int requested, string field = "spec.ports[0].nodePort")
    {
        ArgumentNullException.ThrowIfNull(used);
        if (!Contains(requested))
        {
            throw new NodePortAllocationException(NodePortAllocationError.OutOfRange, requested, string.Create(CultureInfo.InvariantCulture,
                $"{field}: Invalid value: {requested}: provided port is not in the valid range. The range of valid ports is {RangeText}"));
        }

        if (used.Contains(requested))
        {
            throw new NodePortAllocationException(NodePortAllocationError.InUse, requested, string.Create(CultureInfo.InvariantCulture,
                $"{field}: Invalid value: {requested}: provided port is already allocated"));
        }
    }

    // A random start in [from, to], then forward with wrap-around: every free port of the band is reachable.
    private static int? Pick(IReadOnlySet<int> used, int from, int to, Random random)
    {
        if (to < from)
        {
            return null;
        }

        var size = to - from + 1;
        var start = random.Next(size);
        for (var i = 0; i < size; i++)
        {
            var port = from + ((start + i) % size);
            if (!used.Contains(port))
            {
                return port;
            }
        }

        return null;
    }
}
