using System.Net;
using Loom.Agent.Cni;
using Loom.Core.AgentApi;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Linux;

namespace Loom.Agent;

internal sealed partial class AgentHost
{
    /// <summary>
    /// <c>loom status</c>: each controller describes itself; the node-level fields (addresses, peers, endpoints) come from
    /// the context and the controllers' read-only views. Healthy when every controller is.
    /// </summary>
    private async Task<AgentStatus> StatusAsync(CancellationToken ct)
    {
        var node = _context!;
        var (items, _) = await store.ListValidAsync(Kinds.Endpoint, (_, _) => { }, ct).ConfigureAwait(false);
        var endpoints = items.Select(v => v.Value).Where(e => e.Node == _node)
            .Select(e => new EndpointRegistration
            {
                Namespace = e.Namespace, Name = e.Name, ContainerId = e.ContainerId, Interface = e.Interface,
                Ips = e.IPs.Select(i => i.ToString()).ToList(), Labels = e.Labels,
            }).ToList();
        var ipamDir = Path.Combine(config.IpamDataDir, NodeCniConfig.NetworkName);
        var used = Directory.Exists(ipamDir) ? Directory.EnumerateFiles(ipamDir).Count(f => IPAddress.TryParse(Path.GetFileName(f), out _)) : 0;
        var controllers = _controllers.Select(c => c.Describe()).ToList();
        var tunnel = _overlay!.Tunnel;
        return new AgentStatus
        {
            Node = _node,
            Healthy = controllers.All(c => c.Healthy),
            Store = config.Store.Type == "etcd" ? $"etcd {string.Join(",", config.Store.Endpoints)}" : $"sqlite {config.Store.Path}",
            UnderlayInterface = config.Iface,
            UnderlayIp = node.UnderlayIp.ToString(),
            PodCidr = node.PodCidr.ToString(),
            IpamUsed = used,
            IpamCapacity = (1 << (32 - node.PodCidr.PrefixLength)) - 3, // network, gateway, broadcast
            RoutingMode = node.Cluster.Routing.ToString().ToLowerInvariant(),
            TunnelDevice = tunnel?.Name ?? "",
            VtepMac = MacAddress.Format(tunnel?.HardwareAddr),
            IpMasq = node.IpMasq,
            Peers = _overlay.Peers.Select(p => new TunnelPeer(p.Node, p.PodCidr.ToString(), p.UnderlayIp.ToString(), MacAddress.Format(p.VtepMac))).ToList(),
            Endpoints = endpoints,
            ServiceBackend = _services!.BackendName,
            SocketLbCgroup = _services.Kind == ServiceProxyMode.Ebpf ? config.Cgroup ?? "" : "",
            Services = _services.PortCount,
            ServiceSyncs = _services.Applies,
            Controllers = controllers,
            Syncs = _overlay.Passes,
            LastSync = _overlay.LastPass,
            Started = _started,
        };
    }
}
