using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Loom.Core.Model;
using Loom.Core.Pool;
using Loom.Core.Store;
using Loom.Datapath.Networks;
using RoutingMode = Loom.Core.Model.RoutingMode;

namespace Loom.Agent.Networks;

/// <summary>
/// Turns other nodes' objects into one network's peers, believing nothing the network and the pod-CIDR claims do not
/// back up: every route the agent installs comes from here, so a node object claiming 0.0.0.0/0, the underlay subnet
/// or another node's block must not get one. A block must be a <c>nodeMaskSize</c> block of the network's pool and be
/// claimed by that node; the underlay address must be a unicast IPv4 address outside every pool and the service range;
/// a tunnel network's VTEP MAC must be a unicast Ethernet address. What fails is rejected with its reason.
/// </summary>
internal static class PeerCheck
{
    /// <param name="isDefault">The cluster's default network: a node object without a <c>networks</c> entry for it
    /// still counts through its <c>podCidrs</c> / <c>vtepMac</c>, the fields every version writes.</param>
    public static List<NetworkPeer> Peers(string self, IPAddress selfUnderlay, Network network, bool isDefault, ClusterConfig cluster,
        IReadOnlyList<Network> networks, IEnumerable<Versioned<Node>> nodes, IEnumerable<PodCidrClaim> claims, List<Rejection> rejected)
    {
        var owner = new Dictionary<IPNetwork, string>();
        foreach (var c in claims.Where(c => c.Node is not null))
        {
            owner.TryAdd(c.Cidr, c.Node);
        }

        var tunnel = network.RoutingMode == RoutingMode.Tunnel;
        var peers = new List<NetworkPeer>();
        foreach (var (key, n, _) in nodes)
        {
            if (key == self)
            {
                continue;
            }

            void Reject(string reason, string detail) => rejected.Add(new Rejection(Kinds.Node.Name, key, reason, detail));

            if (n.Name != key)
            {
                Reject("name-mismatch", $"stored under key {key} but named \"{n.Name}\"");
                continue;
            }

            var entry = n.Networks?.GetValueOrDefault(network.Name)
                        ?? (isDefault && n.PodCidrs is [var legacy, ..] ? new NodeNetwork { PodCidr = legacy, VtepMac = n.VtepMac } : null);
            if (entry is null || (tunnel && entry.VtepMac is null))
            {
                continue; // the node does not run this network yet, or its tunnel device is not there yet
            }

            PhysicalAddress? mac = null;
            if (tunnel && !TryParseMac(entry.VtepMac!, out mac))
            {
                Reject("bad-vtep-mac", $"network {network.Name}: vtepMac \"{entry.VtepMac}\" is not a unicast Ethernet address");
                continue;
            }

            if (UnderlayError(n.UnderlayIp, selfUnderlay, cluster, networks) is { } underlay)
            {
                Reject("bad-underlay-ip", underlay);
                continue;
            }

            if (BlockError(entry.PodCidr, key, network, owner) is { } error)
            {
                Reject(error.Reason, error.Detail);
                continue;
            }

            peers.Add(new NetworkPeer(key, n.UnderlayIp, entry.PodCidr) { VtepMac = mac });
        }

        return peers;
    }

    private static (string Reason, string Detail)? BlockError(IPNetwork cidr, string node, Network network, Dictionary<IPNetwork, string> owner)
    {
        var pool = network.PodCidr;
        if (cidr.BaseAddress.AddressFamily != AddressFamily.InterNetwork || cidr.PrefixLength != network.NodeMaskSize
            || pool.PrefixLength > cidr.PrefixLength || !pool.Contains(cidr.BaseAddress))
        {
            return ("pod-cidr-outside-pools", $"network {network.Name}: pod CIDR {cidr} is not a /{network.NodeMaskSize} of the pool {pool}");
        }

        if (!owner.TryGetValue(cidr, out var claimedBy))
        {
            return ("pod-cidr-not-claimed", $"network {network.Name}: pod CIDR {cidr} has no claim (podcidr/{cidr})");
        }

        return claimedBy == node ? null : ("pod-cidr-not-claimed", $"network {network.Name}: pod CIDR {cidr} is claimed by node {claimedBy}");
    }

    private static string? UnderlayError(IPAddress? ip, IPAddress selfUnderlay, ClusterConfig cluster, IReadOnlyList<Network> networks)
    {
        if (ip is null || ip.AddressFamily != AddressFamily.InterNetwork)
        {
            return $"underlayIp \"{ip}\" is not an IPv4 address";
        }

        var b = ip.GetAddressBytes();
        if (b[0] is 0 or 127 or >= 224 || (b[0] == 169 && b[1] == 254) || ip.Equals(IPAddress.Broadcast))
        {
            return $"underlayIp {ip} is not a unicast address a tunnel can reach";
        }

        if (ip.Equals(selfUnderlay))
        {
            return $"underlayIp {ip} is this node's own address";
        }

        if (cluster.PodCidrPools.Concat(networks.Select(n => n.PodCidr)).Where(p => p.Contains(ip)).Select(p => (IPNetwork?)p).FirstOrDefault() is { } pool)
        {
            return $"underlayIp {ip} lies inside pod CIDR pool {pool}";
        }

        return cluster.ServiceCidr.Contains(ip) ? $"underlayIp {ip} lies inside the service CIDR {cluster.ServiceCidr}" : null;
    }

    private static bool TryParseMac(string text, out PhysicalAddress mac)
    {
        // Node objects carry ip(8)'s form, 02:42:ac:11:00:02; PhysicalAddress wants dashes.
        mac = PhysicalAddress.None;
        if (text.Length != 17 || !PhysicalAddress.TryParse(text.Replace(':', '-'), out var parsed) || parsed is null)
        {
            return false;
        }

        var bytes = parsed.GetAddressBytes();
        if (bytes.Length != 6 || (bytes[0] & 1) != 0 || bytes.All(x => x == 0))
        {
            return false;
        }

        mac = parsed;
        return true;
    }
}
