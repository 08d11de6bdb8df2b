using System.Net;

namespace Loom.Core.Ipam;

/// <summary>A route from the IPAM config's <c>routes</c>; a null gateway means the default one.</summary>
public sealed record IpamRoute(IPNetwork Destination, IPAddress? Gateway = null);
