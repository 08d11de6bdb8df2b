using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Loom.Core.Cni;
using Loom.Linux;
using Loom.Linux.Firewall;

namespace Loom.Cni;

internal sealed partial class BridgePlugin
{
    private const int EEXIST = 17;
    private const int ENODEV = 19;

    /// <summary>
    /// ADD: each step that changes something pushes its undo; any failure runs them in reverse, so an ADD that
    /// fails leaves nothing behind (no address held, no veth, no rule).
    /// </summary>
    private async Task<CniResult> AddAsync()
    {
        RejectUnimplemented();
        var undo = new Stack<Action>();
        try
        {
            using var containerNs = OpenContainerNs();
            using var host = Netlink.Open();
            using var pod = Netlink.OpenIn(containerNs);
            if (pod.LinkByName(IfName) is not null)
            {
                throw new CniException(CniErrorCodes.Internal, $"interface {IfName} already exists in {env.NetNs}");
            }

            var result = await _ipam.AddAsync().ConfigureAwait(false);
            undo.Push(() => _ipam.DelAsync().GetAwaiter().GetResult());
            if (result.Ips.Count == 0)
            {
                throw new CniException(CniErrorCodes.Internal, $"IPAM plugin {conf.Ipam!.Type} returned no address");
            }

            // The bridge only once an address is held: an ADD refused by IPAM (exhausted, unusable dataDir)
            // must not leave a new bridge behind on the node.
            var bridge = EnsureBridge(host);

            var (hostLink, podLink) = CreateVeth(host, pod, containerNs, bridge);
            undo.Push(() => DeleteLink(host, HostVethName));

            if (conf.IsDefaultGateway)
            {
                AddDefaultRoutes(result);
            }

            ConfigurePod(pod, podLink, result);
            if (conf.IsGateway || conf.IsDefaultGateway)
            {
                EnsureGateway(host, bridge, result);
            }

            if (conf.IpMasq)
            {
                undo.Push(() => IpMasq.Teardown(conf.Name, ContainerId));
                foreach (var ip in result.Ips)
                {
                    IpMasq.Setup(conf.Name, ContainerId, ip.Address.Address, NetworkOf(ip.Address));
                }
            }

            bridge = host.LinkByIndex(bridge.Index) ?? bridge;
            result.Interfaces.Clear();
            result.Interfaces.Add(new CniInterface { Name = bridge.Name, Mac = MacAddress.Format(bridge.HardwareAddr), Mtu = bridge.Mtu });
            result.Interfaces.Add(new CniInterface { Name = hostLink.Name, Mac = MacAddress.Format(hostLink.HardwareAddr), Mtu = hostLink.Mtu });
            result.Interfaces.Add(new CniInterface { Name = IfName, Mac = MacAddress.Format(podLink.HardwareAddr), Mtu = podLink.Mtu, Sandbox = env.NetNs });
            foreach (var ip in result.Ips)
            {
                ip.Interface = 2;
            }

            if (result.Dns.IsEmpty)
            {
                CopyDns(conf.Dns, result.Dns);
            }

            if (AgentRegistration.SocketOf(conf) is { } socket)
            {
                await AgentRegistration.AddAsync(socket, env, result, conf).ConfigureAwait(false);
            }

            return result;
        }
        catch
        {
            while (undo.Count > 0)
            {
                try
                {
                    undo.Pop()();
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    await Console.Error.WriteLineAsync($"loom-cni: rollback step failed: {ex.Message}").ConfigureAwait(false);
                }
            }

            throw;
        }
    }

    /// <summary>
    /// Reference-bridge keys that are parsed but not implemented. Ignoring them would wire a pod without the
    /// VLAN or anti-spoofing isolation the operator asked for, so ADD refuses them (spec code 2, naming key and value).
    /// </summary>
    private void RejectUnimplemented()
    {
        if (conf.Vlan != 0)
        {
            throw new CniException(CniErrorCodes.UnsupportedField, $"unsupported field \"vlan\": {conf.Vlan}", "loom-cni does not tag bridge ports with a VLAN");
        }

        if (conf.MacSpoofCheck)
        {
            throw new CniException(CniErrorCodes.UnsupportedField, "unsupported field \"macspoofchk\": true", "loom-cni does not install MAC spoof-check rules");
        }
    }

    /// <summary>The bridge, created on first use; concurrent ADDs may race to create it, and that is fine.</summary>
    private Link EnsureBridge(INetlink host)
    {
        var name = conf.BridgeName;
        var bridge = host.LinkByName(name);
        if (bridge is null)
        {
            try
            {
                bridge = host.LinkAdd(new BridgeSpec(name) { Mtu = conf.Mtu > 0 ? conf.Mtu : null });
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

        if (!bridge.IsUp)
        {
            host.LinkSetUp(bridge.Index);
        }

        if (conf.PromiscMode)
        {
            host.LinkSetPromisc(bridge.Index, true);
        }

        return bridge;
    }

    private (Link Host, Link Pod) CreateVeth(INetlink host, INetlink pod, NetNsHandle containerNs, Link bridge)
    {
        // A killed earlier ADD of this very attachment may have left its host side behind: the name says so.
        DeleteLink(host, HostVethName);
        var mtu = conf.Mtu > 0 ? conf.Mtu : bridge.Mtu;
        host.LinkAdd(new VethSpec(HostVethName, IfName)
        {
            Mtu = mtu,
            PeerMtu = mtu,
            PeerNetNs = containerNs,
            PeerHardwareAddr = RequestedMac(),
        });
        var hostLink = host.LinkByName(HostVethName) ?? throw new CniException(CniErrorCodes.Internal, $"veth {HostVethName} vanished after creation");
        host.LinkSetMaster(hostLink.Index, bridge.Index);
        if (conf.HairpinMode)
        {
            host.LinkSetHairpin(hostLink.Index, true);
        }

        host.LinkSetUp(hostLink.Index);
        var podLink = pod.LinkByName(IfName) ?? throw new CniException(CniErrorCodes.Internal, $"{IfName} did not appear in {env.NetNs}");
        return (host.LinkByIndex(hostLink.Index) ?? hostLink, podLink);
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
                if (!conf.ForceAddress)
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
                }
                catch (NetlinkException e) when (e.Errno == EEXIST)
                {
                    // Another ADD on this node put it there first.
                }
            }

            Sysctl.Set(gw.AddressFamily == AddressFamily.InterNetwork ? "net.ipv4.ip_forward" : "net.ipv6.conf.all.forwarding", "1");
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

    private PhysicalAddress? RequestedMac()
    {
        var text = env.Args.Mac ?? conf.RuntimeConfig.Mac;
        if (text is null)
        {
            return null;
        }

        try
        {
            return PhysicalAddress.Parse(text.Replace(':', '-'));
        }
        catch (FormatException e)
        {
            throw new CniException(CniErrorCodes.InvalidEnvironmentVariables, $"invalid MAC address {text}", "from CNI_ARGS MAC= or runtimeConfig.mac", e);
        }
    }

    private static IPAddress? GatewayFor(CniResult result, AddressFamily family) =>
        result.Ips.FirstOrDefault(i => i.Address.Address.AddressFamily == family && i.Gateway is not null)?.Gateway;

    private static void CopyDns(CniDns from, CniDns to)
    {
        foreach (var s in from.Nameservers)
        {
            to.Nameservers.Add(s);
        }

        foreach (var s in from.Search)
        {
            to.Search.Add(s);
        }

        foreach (var s in from.Options)
        {
            to.Options.Add(s);
        }

        to.Domain = from.Domain;
    }

    private static void DeleteLink(INetlink nl, string name)
    {
        if (nl.LinkByName(name) is { } link)
        {
            try
            {
                nl.LinkDel(link.Index);
            }
            catch (NetlinkException e) when (e.Errno == ENODEV)
            {
                // Gone between lookup and delete (its peer's namespace was being destroyed): that is the goal.
            }
        }
    }
}
