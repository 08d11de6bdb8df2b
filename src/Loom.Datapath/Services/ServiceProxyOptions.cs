using System.Buffers.Binary;
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

    /// <summary>
    /// kube-proxy's <c>--nodeport-addresses</c>: node ports are served on the node's addresses inside these prefixes.
    /// Empty (the default): on every local address (iptables <c>-m addrtype --dst-type LOCAL</c>, nftables
    /// <c>fib daddr type local</c>; eBPF, which needs addresses, on <see cref="NodeIps"/>).
    /// </summary>
    public IReadOnlyList<IPNetwork> NodePortAddresses { get; init; } = [];

    /// <summary>
    /// The node's own IPv4 addresses (its underlay address first): the eBPF backend's node-port frontends, and what
    /// <see cref="NodePortAddresses"/> is matched against where a backend needs concrete addresses.
    /// </summary>
    public IReadOnlyList<IPAddress> NodeIps { get; init; } = [];

    /// <summary>
    /// kube-proxy's <c>--cluster-cidr</c> for a node running several networks (a migration runs two): the smallest
    /// prefix holding every pool, so no network's pods are masqueraded on their way to a ClusterIP. A masqueraded
    /// flow dies when its output device changes (the kernel drops MASQUERADE conntrack entries whose device changed),
    /// which the switch from a tunnel to native routing does to every one of them.
    /// </summary>
    public static IPNetwork ClusterCidrOf(IReadOnlyCollection<IPNetwork> pools)
    {
        ArgumentNullException.ThrowIfNull(pools);
        if (pools.Count == 0 || pools.Any(p => p.BaseAddress.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork))
        {
            throw new ArgumentException("pools: one or more IPv4 prefixes expected", nameof(pools));
        }

        var first = pools.First();
        for (var length = pools.Min(p => p.PrefixLength); ; length--)
        {
            var mask = length == 0 ? 0u : uint.MaxValue << (32 - length);
            var bytes = first.BaseAddress.GetAddressBytes();
            BinaryPrimitives.WriteUInt32BigEndian(bytes, BinaryPrimitives.ReadUInt32BigEndian(bytes) & mask);
            var candidate = new IPNetwork(new IPAddress(bytes), length);
            if (pools.All(p => candidate.Contains(p.BaseAddress)))
            {
                return candidate;
            }
        }
    }

    /// <summary>The mark as kube-proxy's tests write it (<c>0x4000</c> for bit 14); the kernel stores the same value.</summary>
    public string MasqueradeMark => "0x" + (1 << MasqueradeBit).ToString("x", System.Globalization.CultureInfo.InvariantCulture);
}
