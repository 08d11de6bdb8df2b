namespace Loom.Datapath.Services;

/// <summary>
/// The service proxy implementation interface (one per <see cref="Loom.Core.Model.ServiceProxyMode"/>).
/// Programs ClusterIP load balancing into the kernel of the caller's network namespace (implementations spawn
/// iptables-restore or nft, which inherit the calling thread's namespace). Every call is idempotent. A new instance reads
/// what the kernel holds on its first sync, so a restarted agent adopts the rules a previous run left; after that, as
/// kube-proxy does, it diffs against what it last applied, and re-reads the kernel after a failed apply or hourly.
/// </summary>
public interface IServiceBackend
{
    /// <summary>"iptables", "nftables" or "ebpf", as <c>ClusterConfig.ServiceBackend</c> spells it.</summary>
    string Name { get; }

    /// <summary>Makes the kernel match <paramref name="desired"/>: one atomic batch, touching only what changed.</summary>
    void Sync(IReadOnlyCollection<ServicePortState> desired);

    /// <summary>
    /// True when the backend does not know what the kernel holds (a new instance, a failed apply, a flush): only
    /// <see cref="Sync"/> can be called then, with the whole desired state.
    /// </summary>
    bool NeedsFullSync { get; }

    /// <summary>
    /// The incremental path, valid once <see cref="NeedsFullSync"/> is false: on top of what the last Sync or Update
    /// applied, writes <paramref name="changed"/> (new or replaced ports) and removes <paramref name="removed"/> (the
    /// ports as they were applied). Atomic where the backend's transaction is (a rule backend's one restore run); a
    /// failure makes <see cref="NeedsFullSync"/> true.
    /// </summary>
    void Update(IReadOnlyCollection<ServicePortState> changed, IReadOnlyCollection<ServicePortState> removed);

    /// <summary>Makes the next <see cref="Sync"/> a full one: read the kernel and repair whatever differs (drift).</summary>
    void RequestFullSync();

    /// <summary>Removes every rule, chain, set and table this backend owns (for switching backends or uninstalling).</summary>
    void Flush();

    /// <summary>The rules or elements the kernel holds for <paramref name="service"/> right now, as the tools print them.</summary>
    string Explain(ServicePortState service);
}
