using System.Net;

namespace Loom.Core.Ipam;

/// <summary>
/// One address file on disk. <see cref="IfName"/> is empty for files written by old
/// host-local versions (container ID only); both are empty for a file whose content is missing or garbage.
/// </summary>
public sealed record AllocationRecord(IPAddress Address, string ContainerId, string IfName)
{
    public Attachment Attachment => new(ContainerId, IfName);

    /// <summary>The file names no owner (empty, cut short or garbage): its address stays taken until rebuilt or collected.</summary>
    public bool IsCorrupt => ContainerId.Length == 0;
}
