namespace Loom.Datapath.Services;

/// <summary>
/// What a rule backend last applied, kept in memory as kube-proxy keeps it: after one full sync (which reads the
/// kernel and rewrites every chain), later syncs diff against this and rewrite only services that changed. A failed
/// apply, a flush or <see cref="FullSyncPeriod"/> elapsing makes the next sync a full one again.
/// </summary>
internal sealed class AppliedServices(Func<ServicePortState, string> keyOf)
{
    /// <summary>kube-proxy's FullSyncPeriod: how often a sync re-reads the kernel and rewrites every chain anyway.</summary>
    public static readonly TimeSpan FullSyncPeriod = TimeSpan.FromHours(1);

    private readonly Dictionary<string, ServicePortState> _applied = new(StringComparer.Ordinal);
    private bool _needFullSync = true;
    private long _lastFullSync;

    public bool FullSyncDue => _needFullSync || Environment.TickCount64 - _lastFullSync >= (long)FullSyncPeriod.TotalMilliseconds;

    public IEnumerable<ServicePortState> Services => _applied.Values;

    /// <summary>Whether a sync must (re)write <paramref name="service"/>'s chains.</summary>
    public bool NeedsRewrite(ServicePortState service, bool full) =>
        full || !_applied.TryGetValue(keyOf(service), out var prev) || !prev.Equals(service);

    /// <summary>After a successful apply: <paramref name="desired"/> is what the kernel holds now.</summary>
    public void Record(IReadOnlyCollection<ServicePortState> desired, bool full)
    {
        if (full)
        {
            _lastFullSync = Environment.TickCount64;
        }

        _needFullSync = false;
        _applied.Clear();
        foreach (var s in desired)
        {
            _applied[keyOf(s)] = s;
        }
    }

    /// <summary>False after a failed apply or a flush: what the kernel holds is unknown until a full sync.</summary>
    public bool Known => !_needFullSync;

    /// <summary>
    /// A rule backend's incremental entry: the whole desired state for its partial sync, i.e. what was applied with the
    /// change set merged in (the sync then rewrites only what differs). Refused while what the kernel holds is unknown.
    /// </summary>
    public List<ServicePortState> ForUpdate(string backend, IReadOnlyCollection<ServicePortState> changed, IReadOnlyCollection<ServicePortState> removed)
    {
        ArgumentNullException.ThrowIfNull(changed);
        ArgumentNullException.ThrowIfNull(removed);
        return Known ? With(changed, removed) : throw new InvalidOperationException($"{backend}: an incremental update needs a full sync first");
    }

    /// <summary>What was applied, with <paramref name="changed"/> written over it and <paramref name="removed"/> taken out.</summary>
    public List<ServicePortState> With(IReadOnlyCollection<ServicePortState> changed, IReadOnlyCollection<ServicePortState> removed)
    {
        var merged = new Dictionary<string, ServicePortState>(_applied, StringComparer.Ordinal);
        foreach (var r in removed)
        {
            merged.Remove(keyOf(r));
        }

        foreach (var c in changed)
        {
            merged[keyOf(c)] = c;
        }

        return [.. merged.Values];
    }

    /// <summary>After a failed apply or a flush: what the kernel holds is unknown, so read it next time.</summary>
    public void Forget()
    {
        _applied.Clear();
        _needFullSync = true;
    }
}
