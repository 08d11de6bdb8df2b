using System.Net;
using System.Net.Sockets;
using Loom.Core.Cni;
using Loom.Linux;

namespace Loom.Cni;

internal sealed partial class RoutedPlugin
{
    /// <summary>ADD: the address, the router check, the veth, the pod's side, the host route, forwarding on.</summary>
    protected override async Task<CniResult> AddAsync(Stack<Action> undo)
    {
        using var containerNs = OpenContainerNs();
        using var host = Netlink.Open();
        using var pod = Netlink.OpenInFromCurrentThread(containerNs);
        EnsureNoInterface(pod);
        var result = await AllocateAsync(undo).ConfigureAwait(false);
        if (result.Ips.Select(RouterOf).FirstOrDefault(r => RouterDevice.HolderOf(host, r) is null) is { } router)
        {
            // Pods would have nothing to route through; like a missing subnet file, the node is not ready yet.
            throw new CniException(CniErrorCodes.TryAgainLater, $"node not ready: router IP {router} is on no device",
                $"the loom agent puts it on {RouterDevice.DefaultName}; is the agent running on this node?");
        }

        var (hostLink, podLink) = CreateVeth(host, pod, containerNs, Conf.Mtu > 0 ? Conf.Mtu : null, undo);
        host.LinkSetAlias(hostLink.Index, Alias);
        host.LinkSetUp(hostLink.Index);

        // The pod gets its address as a /32; masquerade still exempts the whole block IPAM took it from.
        var subnets = result.Ips.Select(ip => NetworkOf(ip.Address)).ToList();
        ConfigurePod(pod, podLink, hostLink, result);
        foreach (var ip in result.Ips)
        {
            // Replace, not add: a route left by a veth that GC has not collected yet must not block the address's new owner.
            host.RouteReplace(new Route(HostRouteOf(ip.Address.Address)) { OutputIndex = hostLink.Index, Scope = RouteScope.Link });
        }

        Sysctl.Set("net.ipv4.ip_forward", "1");

        result.Interfaces.Clear();
        result.Interfaces.Add(InterfaceOf(hostLink));
        result.Interfaces.Add(InterfaceOf(podLink, Env.NetNs));
        foreach (var ip in result.Ips)
        {
            ip.Interface = 1;
        }

        await FinishAddAsync(result, undo, subnets).ConfigureAwait(false);
        return result;
    }

    /// <summary>The router IP is the range's gateway (its first address by default), which IPAM never hands out.</summary>
    private static IPAddress RouterOf(CniIpConfig ip)
    {
        if (ip.Address.Address.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new CniException(CniErrorCodes.InvalidNetworkConfig, "invalid network config",
                $"key \"ipam\": \"plumbing\": \"routed\" wires IPv4 only; IPAM returned {ip.Address}");
        }

        return ip.Gateway ?? throw new CniException(CniErrorCodes.InvalidNetworkConfig, "invalid network config",
            $"key \"ipam\": no gateway for {ip.Address}; \"plumbing\": \"routed\" uses it as the pod's router");
    }

    /// <summary>
    /// The pod's side, as Cilium programs it: the address as a /32, <c>ROUTER dev eth0 scope link</c>, then
    /// <c>default via ROUTER</c> (a gateway made reachable by a link route rather than an onlink default: the
    /// router is then reachable itself, and IPAM's own routes via it need no onlink either). The router's MAC is a
    /// permanent neighbour, the host veth's: nothing answers ARP for it on a veth with no address unless node
    /// sysctls happen to allow it (arp_ignore 0; proxy_arp does not apply to an address local to the node), and
    /// the first packet need not wait for a resolution.
    /// </summary>
    private static void ConfigurePod(INetlink pod, Link podLink, Link hostLink, CniResult result)
    {
        var routers = result.Ips.Select(RouterOf).Distinct().ToList();
        foreach (var ip in result.Ips)
        {
            pod.AddrAdd(podLink.Index, ip.Address.Address, 32);
            ip.Address = new CniCidr(ip.Address.Address, 32);
        }

        pod.LinkSetUp(podLink.Index);
        var routes = new List<CniRoute>();
        foreach (var router in routers)
        {
            pod.NeighSet(new Neigh(podLink.Index, router, hostLink.HardwareAddr));
            pod.RouteAdd(new Route(HostRouteOf(router)) { OutputIndex = podLink.Index, Scope = RouteScope.Link });
            routes.Add(new CniRoute { Destination = new CniCidr(router, 32), Scope = (int)RouteScope.Link });
        }

        if (!result.Routes.Any(r => r.Destination.PrefixLength == 0))
        {
            routes.Add(new CniRoute { Destination = new CniCidr(IPAddress.Any, 0), Gateway = routers[0] });
        }

        // IPAM's own routes (the cluster network from the subnet file) go via the router too: the pod has no other link.
        foreach (var r in result.Routes)
        {
            r.Gateway ??= routers[0];
            routes.Add(r);
        }

        foreach (var r in routes.Where(r => r.Gateway is not null))
        {
            pod.RouteAdd(new Route(NetworkOf(r.Destination)) { Gateway = r.Gateway, OutputIndex = podLink.Index });
        }

        result.Routes.Clear();
        foreach (var r in routes)
        {
            result.Routes.Add(r);
        }
    }
}
