using Loom.Datapath.Networks;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Loom.Core.Model;
using Loom.Core.Pool;
using Loom.Core.Store;

namespace Loom.Agent.Overlay;

/// <summary>
/// Turns other nodes' objects into overlay peers, believing nothing the cluster config and the pod-CIDR claims do not
/// back up: every route the agent installs comes from here, so a node object claiming 0.0.0.0/0, the underlay subnet
/// or another node's CIDR must not get one. A pod CIDR must lie in a pool, be of the node mask size and be claimed by
/// that node; the underlay address must be a unicast IPv4 address outside the pools and the service range; the VTEP
/// MAC must be a unicast Ethernet address. What fails is rejected with its reason; the node's other CIDRs still count.
/// </summary>
internal static class PeerCheck
{
    public static List<VxlanPeer> Peers(string self, IPAddress selfUnderlay, ClusterConfig cluster, IEnumerable<Versioned<Node>> nodes,
        IEnumerable<PodCidrClaim> claims, List<Rejection> rejected)
    {
        var owner = new Dictionary<IPNetwork, string>();
        foreach (var c in claims.Where(c => c.Node is not null))
        {
            owner.TryAdd(c.Cidr, c.Node);
        }

        var peers = new List<VxlanPeer>();
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

            var cidrs = n.PodCidrs ?? [];
            if (cidrs.Count == 0 || n.VtepMac is null)
            {
                continue; // not ready: no tunnel yet
            }

            if (!TryParseMac(n.VtepMac, out var mac))
            {
                Reject("bad-vtep-mac", $"vtepMac \"{n.VtepMac}\" is not a unicast Ethernet address");
                continue;
            }

            if (UnderlayError(n.UnderlayIp, selfUnderlay, cluster) is { } underlay)
            {
                Reject("bad-underlay-ip", underlay);
                continue;
            }

            foreach (var cidr in cidrs)
            {
                if (PodCidrError(cidr, key, cluster, owner) is { } error)
                {
                    Reject(error.Reason, error.Detail);
                }
                else
                {
                    peers.Add(new VxlanPeer(key, cidr, n.UnderlayIp, mac));
                }
            }
        }

        return peers;
    }

    private static (string Reason, string Detail)? PodCidrError(IPNetwork cidr, string node, ClusterConfig cluster, Dictionary<IPNetwork, string> owner)
    {
        if (cidr.BaseAddress.AddressFamily != AddressFamily.InterNetwork || cidr.PrefixLength != cluster.NodeMaskSize
            || !cluster.PodCidrPools.Any(p => p.PrefixLength <= cidr.PrefixLength && p.Contains(cidr.BaseAddress)))
        {
            return ("pod-cidr-outside-pools",
                $"pod CIDR {cidr} is not a /{cluster.NodeMaskSize} of the pools {string.Join(", ", cluster.PodCidrPools)}");
        }

        if (!owner.TryGetValue(cidr, out var claimedBy))
        {
            return ("pod-cidr-not-claimed", $"pod CIDR {cidr} has no claim (podcidr/{cidr})");
        }

        return claimedBy == node ? null : ("pod-cidr-not-claimed", $"pod CIDR {cidr} is claimed by node {claimedBy}");
    }

    private static string? UnderlayError(IPAddress? ip, IPAddress selfUnderlay, ClusterConfig cluster)
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

        if (cluster.PodCidrPools.Where(p => p.Contains(ip)).Select(p => (IPNetwork?)p).FirstOrDefault() is { } pool)
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
