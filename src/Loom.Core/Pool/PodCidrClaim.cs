using System.Net;

namespace Loom.Core.Pool;

/// <summary>The record that a pod CIDR belongs to a node; its store key is the CIDR, so creating it with CAS is the lock.</summary>
public sealed record PodCidrClaim(IPNetwork Cidr, string Node);
