using System.Net;
using System.Net.Sockets;
using Loom.Agent.Api;
using Loom.Agent.Cni;
using Loom.Agent.Endpoints;
using Loom.Agent.Flows;
using Loom.Agent.Masq;
using Loom.Agent.Registration;
using Loom.Agent.Routing;
using Loom.Agent.Networks;
using Loom.Agent.Policy;
using Loom.Agent.Services;
using Loom.Core.Controllers;
using Loom.Core.Model;
using Loom.Core.Pool;
using Loom.Core.Store;
using Loom.Datapath.Routing;
using Loom.Datapath.Services;
using Loom.Datapath.Services.Ebpf;
using Loom.Linux;

namespace Loom.Agent;

/// <summary>
/// One node's agent: finds what every controller needs (the cluster config, the underlay, the node's pod CIDR), then
/// starts the controllers in order, each start retried until it succeeds: the overlay and masquerade (the node can
/// route), the node object (not ready), Services, the API socket, the CNI config; then says the node is ready and runs
/// them all. So the first pod never lands on a node that cannot route it or balance its first ClusterIP packet.
/// Partial file: .Status (what <c>loom status</c> shows, from the controllers).
/// </summary>
internal sealed partial class AgentHost(AgentConfig config, IStore backing, TextWriter log) : IDisposable
{
    private GuardedStore? _store;
    private readonly string _node = config.Node!;
    private readonly DateTimeOffset _started = DateTimeOffset.UtcNow;
    private AgentLoops? _loops;
    private NodeContext? _context;
    private NetworkController? _networks;
    private NodeController? _nodeController;
    private ServiceController? _services;
    private PolicyController? _policy;
    private CniConfigController? _cni;
    private List<IController> _controllers = [];
    private IReadOnlyList<IPNetwork> _nodePortAddresses = [];
    private volatile bool _running = true; // /healthz: the process is up and its controllers start or run
    private volatile bool _ready; // /readyz: the node's network is programmed (the node marked ready)

    /// <summary>First delay after a failure; doubles per consecutive failure up to <see cref="RetryCap"/>.</summary>
    internal TimeSpan RetryFirst { get; init; } = TimeSpan.FromSeconds(1);

    internal TimeSpan RetryCap { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long any store call may take before it counts as the store being unreachable.</summary>
    internal TimeSpan StoreDeadline { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The store every controller uses: calls with a deadline, their outcome feeding <see cref="StoreHealth"/>.</summary>
    internal GuardedStore Store => _store ??= new GuardedStore(backing, new StoreHealth(), StoreDeadline);

    /// <summary>The loops, retries and refusal reports every controller shares.</summary>
    internal AgentLoops Loops => _loops ??= new AgentLoops(Store, log) { RetryFirst = RetryFirst, RetryCap = RetryCap, StoreHealth = Store.Health };

    public async Task RunAsync(CancellationToken ct)
    {
        var node = _context = await BootstrapAsync(ct).ConfigureAwait(false);
        _networks = new NetworkController(node, Store, Loops);
        _nodeController = new NodeController(node, Store, Loops, () => _networks.DefaultEntry, _networks.NodeEntries);
        _networks.Changed += _nodeController.Poke; // peers learn a new network's block and VTEP from the node object
        var healthChecks = new HealthCheckServer(Loops);
        _services = new ServiceController(node, Store, Loops, CreateBackend, ConntrackCleanup.Run, healthChecks);
        AgentMetrics.ObserveBpfMaps(_services.MapFill);
        _cni = new CniConfigController(node, Loops, _networks);
        _policy = new PolicyController(node, Store, Loops, NodeDevices);
        // eBPF services' lb4 (reverse NAT) and the policy program (a pod's ingress) sit on the pod veth's egress: host
        // routing then delivers local pods' packets through it instead of straight into the pod.
        var hostRouting = new HostRoutingController(node, _networks, Loops,
            () => _services.Kind == ServiceProxyMode.Ebpf || _policy.Mode != PolicyEnforcementMode.Never ? PodDelivery.Egress : PodDelivery.Peer);
        _policy.ModeChanged += hostRouting.Poke;
        var flows = new FlowController(node, Loops, _policy, _services, () => RingSource.Open(config), (on, aggregation) => RingSource.Configure(config, on, aggregation));
        var api = new ApiController(node, Store, Loops, _services, StatusAsync, hostRouting.PodAdded, _policy, flows);
        // Flows before policy: the ring is read before the programs write into it.
        _controllers = [new StoreProbe(Store), _networks, new MasqueradeController(node, _networks, Loops), _nodeController, _services, healthChecks, flows, _policy, hostRouting, api, _cni,
            new EndpointReconciler(node, Store, Loops)];

        using var metrics = AgentMetrics.Start(config.MetricsAddress);
        using var health = StartHealth();
        foreach (var c in _controllers)
        {
            await Loops.RetryAsync(c.Name + " start", c.StartAsync, ct).ConfigureAwait(false);
        }

        await Loops.RetryAsync("node ready", _nodeController.MarkReadyAsync, ct).ConfigureAwait(false);
        var all = _controllers.Select(c => c.RunAsync(ct)).ToList();
        _ready = true;
        _running = true;
        await Task.WhenAny(all).ConfigureAwait(false);
        _running = _ready = false; // a loop ended: the agent is going down
        ct.ThrowIfCancellationRequested();
        await Task.WhenAll(all).ConfigureAwait(false); // surfaces the failure
    }

    /// <summary>/healthz and /readyz beside /metrics; a port they cannot share is logged, not fatal (only the probes miss them).</summary>
    private HealthEndpoints? StartHealth()
    {
        try
        {
            return HealthEndpoints.Start(config.MetricsAddress, () => _running, () => _ready);
        }
        catch (HttpListenerException e)
        {
            Loops.Log($"health endpoints on {config.MetricsAddress}: {e.Message}");
            return null;
        }
    }

    /// <summary>
    /// What the controllers share, read once: the cluster config (checked before the kernel is touched: the tunnel device
    /// named there is deleted and recreated), the underlay's address, and this node's pod CIDR from the cluster's pools.
    /// </summary>
    private async Task<NodeContext> BootstrapAsync(CancellationToken ct)
    {
        var cluster = await Loops.RetryAsync("reading the cluster config", ReadClusterConfigAsync, ct).ConfigureAwait(false);
        ClusterCheck.Validate(cluster, config);
        if (FlowController.Validate(config) is { } badFlows)
        {
            throw new AgentStartException(badFlows);
        }

        _nodePortAddresses = ParseNodePortAddresses(config.NodePortAddresses);

        var (underlayIp, mtu) = FindUnderlay();
        Loops.Log($"node {_node}: underlay {config.Iface} {underlayIp} mtu {mtu}");
        var podCidr = await Loops.RetryAsync("pod CIDR allocation", c => AllocatePodCidrAsync(cluster, c), ct).ConfigureAwait(false);
        Loops.Log($"pod CIDR {podCidr} from pools {string.Join(", ", cluster.PodCidrPools)}");
        return new NodeContext(_node, config, cluster, underlayIp, mtu, podCidr);
    }

    /// <summary>The cluster config; one that does not decode stops the start (every node would refuse it alike).</summary>
    private async Task<ClusterConfig> ReadClusterConfigAsync(CancellationToken ct)
    {
        try
        {
            return await NodeAgent.ClusterConfigAsync(Store, ct).ConfigureAwait(false);
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new AgentStartException($"the cluster config in the store (config/cluster) is malformed: {e.Message}", e);
        }
    }

    private (IPAddress Ip, int Mtu) FindUnderlay()
    {
        using var nl = Netlink.Open();
        var link = nl.LinkByName(config.Iface)
                   ?? throw new AgentStartException($"underlay interface {config.Iface} does not exist (set --iface or \"iface\")");
        var addrs = nl.AddrList(link.Index, AddressFamily.InterNetwork);
        var addr = (addrs.Count > 0 ? addrs[0] : null) ?? throw new AgentStartException($"underlay interface {config.Iface} has no IPv4 address");
        return (addr.Ip, link.Mtu);
    }

    private async Task<IPNetwork> AllocatePodCidrAsync(ClusterConfig cluster, CancellationToken ct)
    {
        try
        {
            return await PodCidrAllocator.Create(Store, cluster).AllocateAsync(_node, ct).ConfigureAwait(false);
        }
        catch (PodCidrPoolExhaustedException e)
        {
            throw new AgentStartException(e.Message, e);
        }
    }

    private IServiceBackend CreateBackend(ServiceProxyMode kind) => ServiceBackends.Create(
        kind,
        // Every network's pool as of now (the agent restarts onto a migration's network): their pods are the cluster's.
        new ServiceProxyOptions
        {
            ClusterCidr = ServiceProxyOptions.ClusterCidrOf([_context!.Cluster.PodCidrPools[0], .. _networks!.Current.Select(n => n.Network.PodCidr)]),
            NodePortAddresses = _nodePortAddresses,
            NodeIps = [_context.UnderlayIp],
        },
        new EbpfServiceOptions
        {
            PinDirectory = Path.Combine(config.BpfPinDir, "lb4"),
            EventsDirectory = Datapath.Flows.FlowEventMaps.DirectoryFor(config.BpfPinDir),
            CgroupPath = config.Cgroup,
            Algorithm = config.LoadBalancerAlgorithm switch
            {
                "maglev" => LbAlgorithm.Maglev,
                "random" => LbAlgorithm.Random,
                var other => throw new AgentStartException($"loadBalancerAlgorithm: \"{other}\" is not an algorithm; use random or maglev"),
            },
            MaglevTableSize = config.MaglevTableSize,
            MapSizes = config.BpfMapSizes,
            Interfaces = PodVeths, // the host side of every pod's veth gets the per-packet load balancer
            NodePortInterface = config.Iface, // node ports arriving from the underlay
        });

    /// <summary>kube-proxy's --nodeport-addresses; checked at start, so a typo stops the agent instead of every service write.</summary>
    internal static IReadOnlyList<IPNetwork> ParseNodePortAddresses(IEnumerable<string> texts) => [.. texts.Select(text =>
        IPNetwork.TryParse(text, out var cidr) && cidr.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork
            ? cidr
            : throw new AgentStartException($"nodePortAddresses: \"{text}\" is not an IPv4 CIDR (e.g. 192.168.10.0/24)"))];

    /// <summary>Where a pod's packet leaves the node: the underlay and every network's tunnel device (deferred egress policy).</summary>
    private List<string> NodeDevices() =>
        [config.Iface, .. _networks!.Current.Where(n => n.Network.RoutingMode == RoutingMode.Tunnel && n.Network.Tunnel is not null).Select(n => n.Network.Tunnel!.Device)];

    /// <summary>Host-side veths of this node's pods: the ports of the pod bridge, and routed pods' veths (tagged by loom-cni).</summary>
    private static List<int> PodVeths()
    {
        using var nl = Netlink.Open();
        var bridge = nl.LinkByName(NodeCniConfig.BridgeName);
        return nl.LinkList()
            .Where(l => l.Kind == "veth" && ((bridge is not null && l.MasterIndex == bridge.Index) || (l.MasterIndex == 0 && l.Alias?.StartsWith("loom-cni:", StringComparison.Ordinal) == true)))
            .Select(l => l.Index).ToList();
    }

    public void Dispose()
    {
        foreach (var c in _controllers.OfType<IDisposable>())
        {
            c.Dispose();
        }

        _store?.Health.Dispose();
    }
}
