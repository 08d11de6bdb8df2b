using System.Net;
using Loom.Core.Model;

namespace Loom.Datapath.Services.Ebpf;

/// <summary>
/// The lb4_svc frontends one service port is served on, each as a state of its own (own master entry, own rev-NAT):
/// the ClusterIP with <see cref="ServicePortState.InternalBackends"/>, and with <see cref="ServicePortState.ExternalBackends"/>
/// the node port on every node address and the service port on every external IP, as Cilium's NodePort and ExternalIPs
/// frontends. An external frontend's state keeps <see cref="ServicePortState.IsExternal"/> true; the ClusterIP's is false.
/// </summary>
internal static class LbFrontends
{
    public static IEnumerable<ServicePortState> Of(ServicePortState s, IReadOnlyList<IPAddress> nodeAddresses)
    {
        ArgumentNullException.ThrowIfNull(s);
        if (!s.IsExternal && s.InternalTrafficPolicy == TrafficPolicy.Cluster)
        {
            yield return s; // the common ClusterIP service: the state itself (no copy per sync)
            yield break;
        }

        yield return s with { Backends = s.InternalBackends, NodePort = 0, ExternalIps = [] };
        var external = s.ExternalBackends;
        if (s.NodePort != 0)
        {
            foreach (var node in nodeAddresses)
            {
                yield return s with { Frontend = s.Frontend with { Address = node, Port = s.NodePort }, Backends = external, ExternalIps = [] };
            }
        }

        foreach (var ip in s.ExternalIps)
        {
            yield return s with { Frontend = s.Frontend with { Address = ip }, Backends = external, NodePort = 0, ExternalIps = [ip] };
        }
    }

    /// <summary>The node addresses node ports are served on: the node IPs inside the node-port prefixes (all if none given).</summary>
    public static IReadOnlyList<IPAddress> NodeAddresses(ServiceProxyOptions proxy)
    {
        ArgumentNullException.ThrowIfNull(proxy);
        return [.. proxy.NodeIps.Where(ip => ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork
            && (proxy.NodePortAddresses.Count == 0 || proxy.NodePortAddresses.Any(n => n.Contains(ip))))];
    }
}
