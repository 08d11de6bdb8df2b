namespace Loom.Datapath.Services;

/// <summary>
/// The incremental entry: the change set merged over what was applied, then the usual partial sync, which diffs against
/// memory and rewrites only the changed services' chains (one restore transaction).
/// </summary>
internal sealed partial class NftablesServiceBackend
{
    public bool NeedsFullSync => !_applied.Known;

    public void Update(IReadOnlyCollection<ServicePortState> changed, IReadOnlyCollection<ServicePortState> removed)
    {
        ArgumentNullException.ThrowIfNull(changed);
        ArgumentNullException.ThrowIfNull(removed);
        if (NeedsFullSync)
        {
            throw new InvalidOperationException($"{Name}: an incremental update needs a full sync first");
        }

        Sync(_applied.With(changed, removed));
    }

    public void RequestFullSync() => _applied.Forget();
}
