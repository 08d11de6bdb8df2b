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

    /// <summary>Removes every rule, chain, set and table this backend owns (for switching backends or uninstalling).</summary>
    void Flush();

    /// <summary>The rules or elements the kernel holds for <paramref name="service"/> right now, as the tools print them.</summary>
    string Explain(ServicePortState service);
}
