namespace Loom.Core.Ipam;

/// <summary>A container interface that owns addresses: CNI's (containerID, ifname) pair.</summary>
public readonly record struct Attachment(string ContainerId, string IfName);
