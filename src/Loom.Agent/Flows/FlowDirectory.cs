using System.Net;
using System.Net.Sockets;
using Loom.Core.AgentApi;
using Loom.Core.Flows;
using Loom.Core.Model;
using Loom.Core.Policy;

namespace Loom.Agent.Flows;

/// <summary>
/// The names a flow's addresses get, indexed once from what the agent already holds (the policy controller's endpoint
/// and node caches, its ipcache and identities, the Services this node programs, the node's links) and rebuilt when
/// those change, so the event thread only looks up.
/// </summary>
internal sealed class FlowDirectory
{
    private readonly Dictionary<IPAddress, Endpoint> _endpoints = [];
    private readonly Dictionary<IPAddress, uint> _identities = [];
    private readonly Dictionary<uint, IReadOnlyList<string>> _labels = [];
    private readonly Dictionary<IPAddress, string> _nodeIps = [];
    private readonly List<(IPNetwork Cidr, string Node)> _podCidrs = [];
    private readonly Dictionary<(IPAddress, int, string), FlowService> _services = [];
    private readonly IReadOnlyDictionary<int, string> _interfaces;

    public FlowDirectory(IEnumerable<Endpoint> endpoints, IReadOnlyDictionary<IPNetwork, uint> ipcache, IReadOnlyDictionary<uint, SecurityLabels> identities,
        IEnumerable<Node> nodes, IEnumerable<ServiceInfo> services, IReadOnlyDictionary<int, string> interfaces)
    {
        foreach (var ep in endpoints)
        {
            foreach (var ip in ep.IPs)
            {
                _endpoints[ip] = ep;
            }
        }

        foreach (var (prefix, id) in ipcache.Where(e => e.Key.PrefixLength == 32))
        {
            _identities[prefix.BaseAddress] = id;
        }

        foreach (var n in nodes)
        {
            _nodeIps[n.UnderlayIp] = n.Name;
            _podCidrs.AddRange(n.PodCidrs.Concat(n.Networks.Values.Select(v => v.PodCidr)).Select(c => (c, n.Name)));
        }

        foreach (var s in services)
        {
            if (IPAddress.TryParse(s.ClusterIp, out var ip))
            {
                _services[(ip, s.Port, s.Protocol)] = new FlowService(s.Namespace, s.Name);
            }
        }

        // Formatted once per rebuild: every flow's two peers share these lists.
        foreach (var (id, set) in identities)
        {
            _labels[id] = [.. set.Labels.Select(l => $"{l.Key}={l.Value}")];
        }

        _interfaces = interfaces;
    }

    public static FlowDirectory Empty { get; } = new([], new Dictionary<IPNetwork, uint>(), new Dictionary<uint, SecurityLabels>(), [], [], new Dictionary<int, string>());

    /// <summary>
    /// One side of a flow: the pod the address belongs to, its identity (the datapath's, else the ipcache's; an address
    /// outside every pod block that the ipcache does not know is the world), its labels and node.
    /// </summary>
    public FlowPeer Peer(IPAddress ip, int port, uint identity)
    {
        var ep = _endpoints.GetValueOrDefault(ip);
        var blockNode = NodeByPodCidr(ip); // one scan of the blocks per peer
        if (identity == ReservedIdentity.Unknown && !_identities.TryGetValue(ip, out identity) && ip.AddressFamily == AddressFamily.InterNetwork
            && blockNode is null)
        {
            identity = ReservedIdentity.World;
        }

        return new FlowPeer
        {
            Ip = ip.ToString(),
            Port = port,
            Identity = identity,
            Namespace = ep?.Namespace,
            Pod = ep?.Name,
            Node = ep?.Node ?? _nodeIps.GetValueOrDefault(ip) ?? blockNode,
            Labels = Labels(identity),
        };
    }

    /// <summary>The Service whose frontend is ip:port/protocol; null when none.</summary>
    public FlowService? Service(IPAddress ip, int port, string protocol) => _services.GetValueOrDefault((ip, port, protocol));

    public string? Interface(uint ifindex) => ifindex == 0 ? null : _interfaces.GetValueOrDefault((int)ifindex);

    private IReadOnlyList<string> Labels(uint identity)
    {
        if (FlowNames.ReservedLabel(identity) is { } reserved)
        {
            return [reserved];
        }

        return _labels.GetValueOrDefault(identity) ?? [];
    }

    private string? NodeByPodCidr(IPAddress ip) => _podCidrs.FirstOrDefault(c => c.Cidr.Contains(ip)).Node;
}
