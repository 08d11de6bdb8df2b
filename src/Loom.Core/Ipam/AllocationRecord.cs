using System.Net;

namespace Loom.Core.Ipam;

/// <summary>
/// One address file on disk. <see cref="IfName"/> is empty for files written by old
/// host-local versions (container ID only); both are empty for a file whose write was cut short.
/// </summary>
public sealed record AllocationRecord(IPAddress Address, string ContainerId, string IfName)
{
    public Attachment Attachment => new(ContainerId, IfName);
}
