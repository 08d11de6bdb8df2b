using System.Net;
using Loom.Core.Cni;
using Loom.Linux;

namespace Loom.Cni;

internal abstract partial class CniPlugin
{
    /// <summary>
    /// CHECK: the attachment must still be what ADD reported in prevResult: the pod's interface with its MAC,
    /// up, holding its addresses and routes; the node side as the plumbing left it; the address recorded by IPAM.
    /// </summary>
    private async Task CheckAsync()
    {
        var prev = Conf.PrevResult ?? throw new CniException(CniErrorCodes.InvalidNetworkConfig, "invalid network config", "key \"prevResult\": required for CHECK");
        var podIfIndex = prev.Interfaces.ToList().FindIndex(i => i.Name == IfName && !string.IsNullOrEmpty(i.Sandbox));
        if (podIfIndex < 0)
        {
            throw Fail($"prevResult has no interface {IfName} with a sandbox");
        }

        var expected = prev.Interfaces[podIfIndex];
        using var containerNs = OpenContainerNs();
        using var host = Netlink.Open();
        using var pod = Netlink.OpenInFromCurrentThread(containerNs);

        var link = pod.LinkByName(IfName) ?? throw Fail($"interface {IfName} is missing in {Env.NetNs}");
        if (!string.IsNullOrEmpty(expected.Mac) && !string.Equals(MacAddress.Format(link.HardwareAddr), expected.Mac, StringComparison.OrdinalIgnoreCase))
        {
            throw Fail($"interface {IfName} has MAC {MacAddress.Format(link.HardwareAddr)}, expected {expected.Mac}");
        }

        if (!link.IsUp)
        {
            throw Fail($"interface {IfName} is down");
        }

        var addrs = pod.AddrList(link.Index);
        foreach (var ip in prev.Ips.Where(i => i.Interface is null || i.Interface == podIfIndex))
        {
            if (!addrs.Any(a => a.Ip.Equals(ip.Address.Address) && a.PrefixLength == ip.Address.PrefixLength))
            {
                throw Fail($"address {ip.Address} is missing on {IfName}");
            }
        }

        var routes = pod.RouteList();
        foreach (var r in prev.Routes)
        {
            var dst = NetworkOf(r.Destination);
            if (!routes.Any(x => x.Destination.Equals(dst) && (r.Gateway is null || r.Gateway.Equals(x.Gateway))))
            {
                throw Fail($"route {dst}{(r.Gateway is null ? "" : " via " + r.Gateway)} is missing in {Env.NetNs}");
            }
        }

        CheckNode(host, pod, prev);
        await Ipam.CheckAsync().ConfigureAwait(false);
    }

    /// <summary>CHECK, node side (and what the plumbing adds in the pod); throws <see cref="Fail"/> on a difference.</summary>
    protected abstract void CheckNode(INetlink host, INetlink pod, CniResult prev);
}
