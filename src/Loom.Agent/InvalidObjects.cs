namespace Loom.Agent;

/// <summary>A stored object the agent refused: its kind and key, a reason code (the metric label) and what exactly is wrong.</summary>
internal sealed record Rejection(string Kind, string Key, string Reason, string Detail)
{
    public override string ToString() => $"{Kind} {Key}: {Detail}";
}

/// <summary>
/// Counts refused objects without flooding: each pass hands over everything it refused, and only what the previous
/// pass of the same scope did not already refuse is counted and returned (for the log), so a bad object is reported
/// once (and again if it comes back after being fixed), not every 30 s.
/// </summary>
internal sealed class InvalidObjects
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, HashSet<Rejection>> _last = new(StringComparer.Ordinal);

    public IReadOnlyList<Rejection> Report(string scope, IReadOnlyCollection<Rejection> rejected)
    {
        List<Rejection> fresh;
        lock (_lock)
        {
            var last = _last.GetValueOrDefault(scope) ?? [];
            fresh = rejected.Where(r => !last.Contains(r)).ToList();
            _last[scope] = rejected.ToHashSet();
        }

        foreach (var r in fresh)
        {
            AgentMetrics.InvalidObjects.WithLabels(r.Kind, r.Reason).Inc();
        }

        return fresh;
    }
}
