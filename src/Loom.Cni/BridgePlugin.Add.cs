using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Loom.Core.Cni;
using Loom.Linux;
using Loom.Linux.Firewall;

namespace Loom.Cni;

internal sealed partial class BridgePlugin
{
    /// <summary>ADD: the address first, then the bridge, the veth on it, the pod's addresses and routes, the gateway.</summary>
    protected override async Task<CniResult> AddAsync(Stack<Action> undo)
    {
        RejectUnimplemented();
        using var containerNs = OpenContainerNs();
        using var host = Netlink.Open();
        using var pod = Netlink.OpenInFromCurrentThread(containerNs);
        EnsureNoInterface(pod);
        var result = await AllocateAsync(undo).ConfigureAwait(false);

        // The bridge only once an address is held: an ADD refused by IPAM (exhausted, unusable dataDir)
        // must not leave a new bridge behind on the node.
        var bridge = EnsureBridge(host);
        var (hostLink, podLink) = CreateVeth(host, pod, containerNs, Conf.Mtu > 0 ? Conf.Mtu : bridge.Mtu, undo);
        host.LinkSetMaster(hostLink.Index, bridge.Index);
        if (Conf.HairpinMode)
        {
            host.LinkSetHairpin(hostLink.Index, true);
        }

        host.LinkSetUp(hostLink.Index);

        if (Conf.IsDefaultGateway)
        {
            AddDefaultRoutes(result);
        }

        ConfigurePod(pod, podLink, result);
        if (Conf.IsGateway || Conf.IsDefaultGateway)
        {
            EnsureGateway(host, bridge, result);
        }

        bridge = host.LinkByIndex(bridge.Index) ?? bridge;
        result.Interfaces.Clear();
        result.Interfaces.Add(InterfaceOf(bridge));
        result.Interfaces.Add(InterfaceOf(hostLink));
        result.Interfaces.Add(InterfaceOf(podLink, Env.NetNs));
        foreach (var ip in result.Ips)
        {
            ip.Interface = 2;
        }

        await FinishAddAsync(result, undo).ConfigureAwait(false);
        return result;
    }

    /// <summary>
    /// Reference-bridge keys that are parsed but not implemented. Ignoring them would wire a pod without the
    /// VLAN or anti-spoofing isolation the operator asked for, so ADD refuses them (spec code 2, naming key and value).
    /// </summary>
    private void RejectUnimplemented()
    {
        if (Conf.Vlan != 0)
        {
            throw new CniException(CniErrorCodes.UnsupportedField, $"unsupported field \"vlan\": {Conf.Vlan}", "loom-cni does not tag bridge ports with a VLAN");
        }

        if (Conf.MacSpoofCheck)
        {
            throw new CniException(CniErrorCodes.UnsupportedField, "unsupported field \"macspoofchk\": true", "loom-cni does not install MAC spoof-check rules");
        }
    }

    /// <summary>The bridge, created on first use; concurrent ADDs may race to create it, and that is fine.</summary>
    private Link EnsureBridge(INetlink host)
    {
        var name = Conf.BridgeName;
        var bridge = host.LinkByName(name);
        var created = false;
        if (bridge is null)
        {
            try
            {
                bridge = host.LinkAdd(new BridgeSpec(name) { Mtu = Conf.Mtu > 0 ? Conf.Mtu : null });
                created = true;
            }
            catch (NetlinkException e) when (e.Errno == EEXIST)
            {
                bridge = host.LinkByName(name);
            }
        }

        if (bridge is null || bridge.Kind != "bridge")
        {
            throw new CniException(CniErrorCodes.InvalidNetworkConfig, "invalid network config",
                $"key \"bridge\": {name} exists and is not a bridge (kind {bridge?.Kind ?? "unknown"})");
        }

        if (created)
        {
            PinMac(host, bridge);
        }

        if (!bridge.IsUp)
        {
            host.LinkSetUp(bridge.Index);
        }

        if (Conf.PromiscMode)
        {
            host.LinkSetPromisc(bridge.Index, true);
        }

        return bridge;
    }

    private static void ConfigurePod(INetlink pod, Link podLink, CniResult result)
    {
        foreach (var ip in result.Ips)
        {
            pod.AddrAdd(podLink.Index, ip.Address.Address, ip.Address.PrefixLength);
        }

        pod.LinkSetUp(podLink.Index);
        foreach (var r in result.Routes)
        {
            var gw = r.Gateway ?? GatewayFor(result, r.Destination.Address.AddressFamily);
            pod.RouteAdd(new Route(NetworkOf(r.Destination)) { Gateway = gw, OutputIndex = podLink.Index });
        }
    }

    private void EnsureGateway(INetlink host, Link bridge, CniResult result)
    {
        var existing = host.AddrList(bridge.Index);
        foreach (var ip in result.Ips)
        {
            if (ip.Gateway is not { } gw)
            {
                continue;
            }

            var prefix = ip.Address.PrefixLength;
            var network = NetworkOf(ip.Address);
            var other = existing.FirstOrDefault(a => a.Ip.AddressFamily == gw.AddressFamily && network.Contains(a.Ip) && !a.Ip.Equals(gw));
            if (other is not null)
            {
                if (!Conf.ForceAddress)
                {
                    throw new CniException(CniErrorCodes.Internal, $"bridge {bridge.Name} already has {other.Ip}/{other.PrefixLength}, expected {gw}/{prefix}",
                        "set \"forceAddress\": true to replace it");
                }

                host.AddrDel(bridge.Index, other.Ip, other.PrefixLength);
            }

            if (!existing.Any(a => a.Ip.Equals(gw)))
            {
                try
                {
                    host.AddrAdd(bridge.Index, gw, prefix);
                    PinMac(host, bridge); // a bridge someone else made: pinned when it becomes the gateway, as the reference does
                }
                catch (NetlinkException e) when (e.Errno == EEXIST)
                {
                    // Another ADD on this node put it there first.
                }
            }

            Sysctl.Set(gw.AddressFamily == AddressFamily.InterNetwork ? "net.ipv4.ip_forward" : "net.ipv6.conf.all.forwarding", "1");
        }
    }

    /// <summary>
    /// A bridge whose MAC was never set takes the lowest MAC among its ports, so deleting that pod's veth changes the
    /// gateway's MAC under every other pod's ARP entry (their traffic is dropped until ARP revalidates). Set
    /// explicitly, it stays. Done once (a new bridge, or the gateway address added), not on every ADD: setting a
    /// MAC is a NETDEV_CHANGEADDR the whole node hears, milliseconds of a call that should take a few.
    /// </summary>
    private static void PinMac(INetlink host, Link bridge)
    {
        if (bridge.HardwareAddr is { } mac)
        {
            host.LinkSetHardwareAddr(bridge.Index, mac);
        }
    }

    // isDefaultGateway: the pod's default route goes via the bridge, unless IPAM already routes 0/0.
    private static void AddDefaultRoutes(CniResult result)
    {
        foreach (var ip in result.Ips)
        {
            var family = ip.Address.Address.AddressFamily;
            if (ip.Gateway is null || result.Routes.Any(r => r.Destination.PrefixLength == 0 && r.Destination.Address.AddressFamily == family))
            {
                continue;
            }

            var any = family == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any;
            result.Routes.Add(new CniRoute { Destination = new CniCidr(any, 0), Gateway = ip.Gateway });
        }
    }

    private static IPAddress? GatewayFor(CniResult result, AddressFamily family) =>
        result.Ips.FirstOrDefault(i => i.Address.Address.AddressFamily == family && i.Gateway is not null)?.Gateway;
}
