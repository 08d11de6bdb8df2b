using System.Diagnostics;
using Loom.Agent.Cni;
using Loom.Core.AgentApi;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Datapath.Services;
using Loom.Datapath.Services.Ebpf;

namespace Loom.Agent;

internal sealed partial class AgentHost
{
    private static readonly ServiceProxyMode[] AllBackends = [ServiceProxyMode.Iptables, ServiceProxyMode.Nftables, ServiceProxyMode.Ebpf];
    private readonly SemaphoreSlim _serviceSignal = new(0);
    private readonly SemaphoreSlim _serviceLock = new(1);
    private IServiceBackend? _services;
    private ServiceProxyMode _serviceKind;
    private List<ServicePortState> _serviceState = [];
    private long _serviceSyncs;
    private HashSet<string> _localEndpoints = [];

    /// <summary>How long endpoint-add waits for its put to reach the endpoint cache before syncing without it.</summary>
    private static readonly TimeSpan EndpointCacheWait = TimeSpan.FromSeconds(5);

    /// <summary>
    /// kube-proxy's job: every Service in the cluster programmed on this node from the store's Services and
    /// Endpoints (as the caches hold them), re-synced on every change. The backend is the node's override (NodeConfig), else the agent's
    /// config, else the cluster's; switching flushes the previous backend, so no rule of the other is left behind.
    /// </summary>
    private Task SyncServicesAsync(CancellationToken ct) => SyncServicesAsync(0, ct);

    /// <param name="endpointRevision">
    /// Endpoint-add's put: the pass waits until the endpoint cache has it (and attaches the pod's new veth on eBPF).
    /// </param>
    private async Task SyncServicesAsync(long endpointRevision, CancellationToken ct)
    {
        // Two callers: the watch loop, and endpoint-add (which must not return before the pod's veth is programmed).
        if (endpointRevision > 0 && _endpointCache is { } cache)
        {
            try
            {
                await cache.WaitForRevisionAsync(endpointRevision, ct).WaitAsync(EndpointCacheWait, ct).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // The cache's watch is behind (the store is slow or down): sync what it has; the pass that sees the
                // endpoint later attaches the pod's veth.
                Log($"endpoint cache not at revision {endpointRevision} after {EndpointCacheWait.TotalSeconds:0} s; syncing without it");
            }
        }

        await _serviceLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await SyncServicesLockedAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _serviceLock.Release();
        }
    }

    private async Task SyncServicesLockedAsync(CancellationToken ct)
    {
        var rejected = new List<Rejection>();
        var nodeConfig = await store.GetValidAsync(Kinds.NodeConfig, _node, Malformed(Kinds.NodeConfig.Name, rejected), ct).ConfigureAwait(false);
        var kind = nodeConfig?.Value.ServiceBackend ?? config.ServiceBackend ?? _cluster.ServiceBackend;
        var (services, endpoints) = CachedServiceObjects(rejected);
        var desired = Desired(services, endpoints.Select(e => e.Value).ToList(), kind, rejected);
        Refused("services", rejected);
        var switching = _services is null || _serviceKind != kind;
        if (switching)
        {
            Log(_services is null ? $"service backend {Name(kind)}" : $"service backend switched from {_services.Name} to {Name(kind)}");
            _services = CreateBackend(kind);
            _serviceKind = kind;
        }

        // A new local endpoint is a new pod veth: only then does the eBPF backend look for veths to attach to.
        var local = endpoints.Where(e => e.Value.Node == _node).Select(e => e.Key).ToHashSet(StringComparer.Ordinal);
        if (!local.SetEquals(_localEndpoints))
        {
            (_services as EbpfServiceBackend)?.InterfacesChanged();
            _localEndpoints = local;
        }

        var sw = Stopwatch.StartNew();
        try
        {
            _services!.Sync(desired);
            AgentMetrics.ServiceSyncs.WithLabels(_services.Name, "ok").Inc();
        }
        catch
        {
            AgentMetrics.ServiceSyncs.WithLabels(_services!.Name, "error").Inc();
            throw;
        }

        AgentMetrics.ServiceSyncDuration.WithLabels(_services!.Name).Observe(sw.Elapsed.TotalSeconds);
        if (switching)
        {
            // Make before break: the new backend already answers for every service; now remove whatever another
            // backend (this run's previous one, or a previous run's) left, so no rule of the other stays behind.
            foreach (var other in AllBackends.Where(b => b != kind))
            {
                var old = CreateBackend(other);
                old.Flush();
                (old as IDisposable)?.Dispose();
            }
        }

        AgentMetrics.Services.Set(desired.Count);
        AgentMetrics.ServiceEndpoints.Set(desired.Sum(d => d.Backends.Count));
        AgentMetrics.LocalEndpoints.Set(local.Count);
        var changed = !desired.SequenceEqual(_serviceState);
        lock (_stateLock)
        {
            _serviceState = desired;
            _serviceSyncs++;
        }

        if (changed)
        {
            Log($"services: {desired.Count} port(s), {desired.Sum(d => d.Backends.Count)} backend(s) programmed by {_services.Name} in {sw.Elapsed.TotalMilliseconds:F1} ms");
        }
    }

    /// <summary>
    /// The service ports to program, leaving out what would make the backend refuse the whole batch: the model drops a
    /// Service the API server would refuse and a port no backend can express or whose frontend (IP, protocol, port)
    /// another port already has (the first by name keeps it, so every node agrees), each with a reason; here go a
    /// Service that still makes the model throw and more backends than the Maglev table has slots. One bad Service
    /// never blocks the others.
    /// </summary>
    internal List<ServicePortState> Desired(IReadOnlyList<Versioned<Service>> services, List<Endpoint> endpoints, ServiceProxyMode kind, List<Rejection> rejected)
    {
        var skipped = new List<ServiceSkip>();
        IReadOnlyList<ServicePortState> all;
        try
        {
            all = ServiceModel.Compute(services.Select(s => s.Value), endpoints, skipped);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Deliberately broad: whatever one stored object makes the model throw, find it and go on without it.
            // Only then is each Service computed alone, so the usual pass stays a single one.
            var good = new List<Service>();
            foreach (var s in services)
            {
                try
                {
                    ServiceModel.Compute([s.Value], endpoints);
                    good.Add(s.Value);
                }
                catch (Exception one) when (one is not OperationCanceledException)
                {
                    rejected.Add(new Rejection(Kinds.Service.Name, s.Key, "invalid", $"{one.GetType().Name}: {one.Message}"));
                }
            }

            skipped.Clear();
            all = ServiceModel.Compute(good, endpoints, skipped);
        }

        rejected.AddRange(skipped.Select(s => new Rejection(Kinds.Service.Name, s.Service, s.Code, s.Text)));
        var maglev = kind == ServiceProxyMode.Ebpf && config.LoadBalancerAlgorithm == "maglev";
        var desired = new List<ServicePortState>(all.Count);
        foreach (var p in all)
        {
            if (maglev && p.Backends.Count > config.MaglevTableSize)
            {
                rejected.Add(new Rejection(Kinds.Service.Name, $"{p.Name.Namespace}/{p.Name.Name}", "maglev-table-too-small",
                    $"port {p.Name}: {p.Backends.Count} backends do not fit a Maglev table of {config.MaglevTableSize} slots (maglevTableSize)"));
            }
            else
            {
                desired.Add(p);
            }
        }

        return desired;
    }

    private IServiceBackend CreateBackend(ServiceProxyMode kind) => ServiceBackends.Create(
        kind,
        new ServiceProxyOptions { ClusterCidr = _cluster.PodCidrPools[0] },
        new EbpfServiceOptions
        {
            PinDirectory = Path.Combine(config.BpfPinDir, "lb4"),
            CgroupPath = config.Cgroup,
            Algorithm = config.LoadBalancerAlgorithm switch
            {
                "maglev" => LbAlgorithm.Maglev,
                "random" => LbAlgorithm.Random,
                var other => throw new AgentStartException($"loadBalancerAlgorithm: \"{other}\" is not an algorithm; use random or maglev"),
            },
            MaglevTableSize = config.MaglevTableSize,
            Interfaces = PodVeths, // the host side of every pod's veth gets the per-packet load balancer
        });

    /// <summary>Host-side veths of this node's pods: the ports of the pod bridge.</summary>
    private List<int> PodVeths()
    {
        using var nl = Linux.Netlink.Open();
        var bridge = nl.LinkByName(NodeCniConfig.BridgeName);
        return bridge is null ? [] : nl.LinkList().Where(l => l.MasterIndex == bridge.Index && l.Kind == "veth").Select(l => l.Index).ToList();
    }

    private static string Name(ServiceProxyMode kind) => kind.ToString().ToLowerInvariant();

    private List<ServiceInfo> ServiceInfos()
    {
        lock (_stateLock)
        {
            return _serviceState.Select(s => new ServiceInfo
            {
                Namespace = s.Name.Namespace,
                Name = s.Name.Name,
                PortName = s.Name.Port,
                ClusterIp = s.Frontend.Address.ToString(),
                Port = s.Frontend.Port,
                Protocol = s.Frontend.Protocol.ToString().ToUpperInvariant(),
                SessionAffinity = s.SessionAffinity.ToString(),
                Endpoints = s.Backends.Select(b => $"{b.Address}:{b.Port}").ToList(),
            }).ToList();
        }
    }

    /// <summary><c>loom explain service</c>: the frontend, its backends, and what this node's kernel holds for it.</summary>
    private string ExplainService(string key)
    {
        List<ServicePortState> ports;
        lock (_stateLock)
        {
            ports = _serviceState.Where(s => $"{s.Name.Namespace}/{s.Name.Name}" == key).ToList();
        }

        if (ports.Count == 0)
        {
            return $"service {key} is not programmed on {_node} (no such service, or no ports)\n";
        }

        var sb = new System.Text.StringBuilder();
        foreach (var p in ports)
        {
            sb.AppendLine($"Service:   {p.Name}");
            sb.AppendLine($"Frontend:  {p.Frontend.Address}:{p.Frontend.Port}/{p.Frontend.Protocol.ToString().ToUpperInvariant()}  (affinity {p.SessionAffinity})");
            sb.AppendLine($"Backends:  {(p.Backends.Count == 0 ? "none: connections are refused" : string.Join(", ", p.Backends.Select(b => $"{b.Address}:{b.Port}")))}");
            sb.AppendLine($"Node {_node}, backend {_services!.Name}, programmed:");
            sb.AppendLine(_services.Explain(p).TrimEnd());
            sb.AppendLine();
        }

        return sb.ToString().TrimEnd() + "\n";
    }
}
