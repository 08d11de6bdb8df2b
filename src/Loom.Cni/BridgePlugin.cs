using System.Net;
using Loom.Core.Cni;
using Loom.Linux;

namespace Loom.Cni;

/// <summary>
/// Bridge mode, as Flannel's delegate wires pods: a bridge on the node (default <c>cni0</c>), one veth per
/// attachment with its host side on the bridge, the range's gateway on the bridge. The commands live in partial
/// files by concern; what the routed plumbing shares is in <see cref="CniPlugin"/>.
/// </summary>
internal sealed partial class BridgePlugin(CniEnvironment env, NetConf conf) : CniPlugin(env, conf)
{
    private static Link BridgeOf(INetlink host, string name) =>
        host.LinkByName(name) ?? throw new CniException(PluginErrors.CheckFailed, $"bridge {name} does not exist");

    /// <summary>CHECK, node side: the host veth on the bridge, the gateway on the bridge.</summary>
    protected override void CheckNode(INetlink host, INetlink pod, CniResult prev)
    {
        var bridge = BridgeOf(host, Conf.BridgeName);
        var hostLink = host.LinkByName(HostVethName) ?? throw Fail($"host veth {HostVethName} is missing");
        if (hostLink.MasterIndex != bridge.Index)
        {
            throw Fail($"host veth {HostVethName} is not attached to {bridge.Name}");
        }

        if (Conf.IsGateway)
        {
            var gateways = prev.Ips.Select(i => i.Gateway).OfType<IPAddress>();
            var onBridge = host.AddrList(bridge.Index);
            foreach (var gw in gateways.Where(g => !onBridge.Any(a => a.Ip.Equals(g))))
            {
                throw Fail($"gateway {gw} is not on {bridge.Name}");
            }
        }
    }

    /// <summary>GC: only veths on this network's bridge with names this plugin makes.</summary>
    protected override IEnumerable<Link> HostVeths(INetlink host) =>
        host.LinkByName(Conf.BridgeName) is { } bridge
            ? host.LinkList().Where(l => l.MasterIndex == bridge.Index && HostVeth.IsOurs(l.Name))
            : [];
}
