namespace Loom.Datapath.Services;

/// <summary>The incremental entry (<see cref="AppliedServices.ForUpdate"/>), then the usual partial sync: one restore transaction.</summary>
internal sealed partial class NftablesServiceBackend
{
    public bool NeedsFullSync => !_applied.Known;

    public void Update(IReadOnlyCollection<ServicePortState> changed, IReadOnlyCollection<ServicePortState> removed) =>
        Sync(_applied.ForUpdate(Name, changed, removed));

    public void RequestFullSync() => _applied.Forget();
}
