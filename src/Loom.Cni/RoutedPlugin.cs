using System.Net;
using Loom.Core.Cni;
using Loom.Linux;

namespace Loom.Cni;

/// <summary>
/// Routed mode, as Cilium wires pods: no bridge; a veth per pod whose host side has no address and carries a /32
/// host route to the pod (<c>POD_IP dev HOSTVETH scope link</c>); in the pod, the address as a /32, a link route to
/// the node's router IP (held by <c>loom_host</c>, see <see cref="RouterDevice"/>) and the default route via it.
/// The node's routing table forwards between pods. The commands live in partial files by concern.
/// </summary>
internal sealed partial class RoutedPlugin(CniEnvironment env, NetConf conf) : CniPlugin(env, conf)
{
    /// <summary>The host veth's IFLA_IFALIAS (<see cref="CniNames.RoutedVethAlias"/>).</summary>
    private string Alias => CniNames.RoutedVethAlias(Conf.Name);

    /// <summary>CHECK, node side: the host veth (ours, up), its host routes, the router IP held here, the pod's router neighbour.</summary>
    protected override void CheckNode(INetlink host, INetlink pod, CniResult prev)
    {
        var hostLink = host.LinkByName(HostVethName) ?? throw Fail($"host veth {HostVethName} is missing");
        if (hostLink.Alias != Alias || hostLink.MasterIndex != 0)
        {
            throw Fail($"host veth {HostVethName} is not a routed veth of network {Conf.Name}");
        }

        if (!hostLink.IsUp)
        {
            throw Fail($"host veth {HostVethName} is down");
        }

        var routes = host.RouteList();
        var podLink = pod.LinkByName(IfName) ?? throw Fail($"interface {IfName} is missing in {Env.NetNs}");
        var neighbours = pod.NeighList(podLink.Index);
        foreach (var ip in prev.Ips)
        {
            var dst = HostRouteOf(ip.Address.Address);
            if (!routes.Any(r => r.Destination.Equals(dst) && r.OutputIndex == hostLink.Index && r.Gateway is null))
            {
                throw Fail($"host route {dst} dev {HostVethName} is missing");
            }

            if (ip.Gateway is not { } router)
            {
                continue;
            }

            if (RouterDevice.HolderOf(host, router) is null)
            {
                throw Fail($"router IP {router} is on no device of the node (expected on {RouterDevice.DefaultName})");
            }

            if (!neighbours.Any(n => n.Ip.Equals(router) && n.State.HasFlag(NeighState.Permanent) && Equals(n.HardwareAddr, hostLink.HardwareAddr)))
            {
                throw Fail($"neighbour {router} lladdr {MacAddress.Format(hostLink.HardwareAddr)} is missing on {IfName}");
            }
        }
    }

    /// <summary>GC: only veths with names this plugin makes, on no bridge, marked with this network's alias.</summary>
    protected override IEnumerable<Link> HostVeths(INetlink host) =>
        host.LinkList().Where(l => HostVeth.IsOurs(l.Name) && l.MasterIndex == 0 && l.Alias == Alias);

    private static IPNetwork HostRouteOf(IPAddress ip) => new(ip, ip.GetAddressBytes().Length * 8);
}
