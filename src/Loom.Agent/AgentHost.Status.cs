using System.Net;
using Loom.Agent.Cni;
using Loom.Core.AgentApi;
using Loom.Core.Model;
using Loom.Core.Networks;
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
        var outage = Store.Health.Outage;
        var endpoints = (await StoredEndpointsAsync(outage is null, ct).ConfigureAwait(false)).Where(e => e.Node == _node)
            .Select(e => new EndpointRegistration
            {
                Namespace = e.Namespace, Name = e.Name, ContainerId = e.ContainerId, Interface = e.Interface,
                Ips = e.IPs.Select(i => i.ToString()).ToList(), Labels = e.Labels,
            }).ToList();
        var controllers = _controllers.Select(c => c.Describe()).ToList();
        var views = _networks!.Views;
        var primary = _networks.Primary ?? "";
        var networks = views.Select(v => NetworkStatusOf(v, v.Network.Name == primary)).ToList();
        var legacy = networks.FirstOrDefault(n => n.Name == _networks.DefaultNetwork);
        var tunnel = _networks.DefaultTunnel;
        var policy = _policy!.Counts();
        return new AgentStatus
        {
            Node = _node,
            Healthy = controllers.All(c => c.Healthy),
            Store = SourceDescription?.Invoke() ?? (config.Store.Type == "etcd" ? $"etcd {string.Join(",", config.Store.Endpoints)}" : $"sqlite {config.Store.Path}"),
            StoreReachable = outage is null,
            StoreUnreachableSince = outage?.Since,
            StoreError = outage?.Reason ?? "",
            UnderlayInterface = config.Iface,
            UnderlayIp = node.UnderlayIp.ToString(),
            PodCidr = legacy?.Block ?? node.PodCidr.ToString(),
            IpamUsed = legacy?.IpamUsed ?? 0,
            IpamCapacity = legacy?.IpamCapacity ?? 0,
            RoutingMode = legacy?.RoutingMode ?? node.Cluster.Routing.ToString().ToLowerInvariant(),
            TunnelDevice = tunnel?.Name ?? "",
            VtepMac = MacAddress.Format(tunnel?.HardwareAddr),
            IpMasq = node.IpMasq && legacy is not null && legacy.Masquerading != "Disabled",
            Peers = [.. views.SelectMany(v => v.Peers.Select(p => new TunnelPeer(p.Node, p.Block.ToString(), p.NodeIp.ToString(), MacAddress.Format(p.VtepMac)) { Network = v.Network.Name }))],
            Networks = networks,
            PrimaryNetwork = primary,
            Endpoints = endpoints,
            ServiceBackend = _services!.BackendName,
            SocketLbCgroup = _services.Kind == ServiceProxyMode.Ebpf ? config.Cgroup ?? "" : "",
            Services = _services.PortCount,
            PolicyEnforcement = NetworkYaml.Wire(_policy.Mode),
            Policies = policy.Policies,
            PolicyEndpoints = policy.Endpoints,
            PolicyIngressEnforced = policy.IngressEnforced,
            PolicyEgressEnforced = policy.EgressEnforced,
            Identities = policy.Identities,
            ServiceSyncs = _services.Applies,
            BpfMaps = string.Join(", ", _services.MapFill()),
            Controllers = controllers,
            Syncs = controllers.FirstOrDefault(c => c.Name == _networks.Name)?.Passes ?? 0,
            LastSync = DateTimeOffset.UtcNow,
            Started = _started,
        };
    }

    /// <summary>
    /// The stored endpoints; none while the store is unreachable (status must answer during an outage, when a read
    /// would only wait for its deadline).
    /// </summary>
    private async Task<IEnumerable<Endpoint>> StoredEndpointsAsync(bool reachable, CancellationToken ct)
    {
        if (!reachable)
        {
            return [];
        }

        try
        {
            var (items, _) = await Store.WithDeadline(TimeSpan.FromSeconds(2)).ListValidAsync(Kinds.Endpoint, (_, _) => { }, ct).ConfigureAwait(false);
            return items.Select(v => v.Value);
        }
        catch (Exception e) when (!ct.IsCancellationRequested && StoreHealth.IsOutage(e))
        {
            return [];
        }
    }

    /// <summary>One network's line of <c>loom status</c>; IPAM counts the address files loom-cni's IPAM keeps for it.</summary>
    private NetworkStatus NetworkStatusOf(Networks.NetworkController.NetworkView v, bool primary)
    {
        var n = v.Network.Network;
        var routed = n.Plumbing == Plumbing.Routed;
        var ipamDir = Path.Combine(config.IpamDataDir, routed ? n.Name : NodeCniConfig.NetworkName);
        var used = Directory.Exists(ipamDir) ? Directory.EnumerateFiles(ipamDir).Count(f => IPAddress.TryParse(Path.GetFileName(f), out _)) : 0;
        var tunnel = n.RoutingMode == RoutingMode.Tunnel;
        return new NetworkStatus
        {
            Name = n.Name,
            Block = v.Network.Block.ToString(),
            IpamUsed = used,
            IpamCapacity = (1 << (32 - v.Network.Block.PrefixLength)) - 3, // network, router, broadcast
            RoutingMode = tunnel ? "tunnel" : "native",
            Routing = tunnel
                ? $"vxlan {n.Tunnel?.Device} port {n.Tunnel?.Port} vni {n.Tunnel?.Vni}"
                : $"direct routes to {v.Peers.Count} peer(s) via {config.Iface}",
            Plumbing = routed ? "routed" : "bridge",
            HostRouting = n.HostRouting == HostRouting.Bpf ? "BPF" : "Legacy",
            Masquerading = n.Masquerade switch { Masquerade.Bpf => "BPF", Masquerade.Iptables => "IPTables", _ => "Disabled" },
            Primary = primary,
            Ready = v.Network.Ready,
            CniConfig = primary ? _cni?.ConflistPath ?? "" : "",
            Peers = v.Peers.Count,
        };
    }
}
