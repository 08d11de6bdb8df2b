using System.Net;

namespace Loom.Core.Ipam;

/// <summary>
/// host-local style allocation for one network. Every operation takes the network's flock,
/// so separate plugin processes (and host-local itself) never hand out the same address.
/// </summary>
public interface IIpAllocator : IDisposable
{
    IpamConfig Config { get; }

    /// <summary>
    /// Gives the attachment one address from every range set, all or nothing. Addresses the
    /// attachment already holds are returned again, so a retried ADD is harmless.
    /// </summary>
    /// <param name="attachment">The (containerID, ifname) that will own the addresses.</param>
    /// <param name="requested">Specific addresses wanted, at most one per range set.</param>
    /// <exception cref="IpamException">Exhausted, RequestedIpUnavailable or Io.</exception>
    IReadOnlyList<IpAllocation> Allocate(Attachment attachment, IReadOnlyCollection<IPAddress>? requested = null);

    /// <summary>Frees everything the attachment holds; releasing nothing is not an error.</summary>
    IReadOnlyList<AllocationRecord> Release(Attachment attachment);

    /// <summary>
    /// DEL without the agent's word that the attachment's Endpoint is gone: its addresses stay allocated, marked
    /// pending release, so no ADD hands them out while a stale Endpoint still draws Service traffic to them. A later
    /// <see cref="Release"/> (the runtime retrying DEL) or the agent (<see cref="AllocationDirectory"/>) frees them.
    /// </summary>
    IReadOnlyList<AllocationRecord> HoldForRelease(Attachment attachment);

    /// <summary>What the attachment holds (for CNI CHECK).</summary>
    IReadOnlyList<AllocationRecord> Find(Attachment attachment);

    /// <summary>Every address file of the network, whichever range it belongs to.</summary>
    IReadOnlyList<AllocationRecord> ListAllocations();

    /// <summary>Frees every allocation whose owner is not among <paramref name="validAttachments"/> (CNI GC), except those pending release.</summary>
    IReadOnlyList<AllocationRecord> GarbageCollect(IEnumerable<Attachment> validAttachments);

    /// <summary>True when every range set still has a free address, i.e. an ADD could succeed (CNI STATUS).</summary>
    bool HasFreeAddress();
}
