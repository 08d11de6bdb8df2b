using System.Net;
using Loom.Core.Model;

namespace Loom.Datapath.Services;

/// <summary>The node-wide knobs kube-proxy takes on its command line, with kube-proxy's defaults.</summary>
public sealed record ServiceProxyOptions
{
    /// <summary>
    /// The pod network (kube-proxy's <c>--cluster-cidr</c>): ClusterIP traffic from outside it is marked for masquerade
    /// so replies come back through this node. Null disables that rule.
    /// </summary>
    public IPNetwork? ClusterCidr { get; init; } = ClusterConfig.DefaultPodCidr;

    /// <summary>kube-proxy's <c>--iptables-masquerade-bit</c>: the packet mark bit meaning "SNAT me".</summary>
    public int MasqueradeBit { get; init; } = 14;

    /// <summary>Add <c>--random-fully</c> / <c>fully-random</c> to MASQUERADE, as kube-proxy does when iptables supports it.</summary>
    public bool RandomFully { get; init; } = true;

    /// <summary>The mark as kube-proxy's tests write it (<c>0x4000</c> for bit 14); the kernel stores the same value.</summary>
    public string MasqueradeMark => "0x" + (1 << MasqueradeBit).ToString("x", System.Globalization.CultureInfo.InvariantCulture);
}
