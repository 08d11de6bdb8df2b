using Loom.Core.Controllers;
using Loom.Core.Model;
using Loom.Core.Reconcile;
using Loom.Core.Store;
using Loom.Core.Watch;
using Loom.Datapath.Services;

namespace Loom.Agent.Services;

/// <summary>
/// kube-proxy's job on one node: every Service in the cluster programmed from the store's Services and Endpoints.
/// Two caches (list once, then watch) feed their changes into a <see cref="ServiceTable"/>, which recomputes only the
/// Services a change touches; the ports that changed become rows of a <see cref="Reconciler{TKey, TValue}"/> whose target
/// is the node's service proxy implementation (<see cref="ServiceBackendOperations"/>), so one endpoint's change writes
/// one Service's entries whatever the cluster's size. The implementation is the node's override (NodeConfig), else the
/// agent's config, else the cluster's (as stored now); a change of any is a full pass on the new one. Partial files: .Objects (the
/// caches and refused objects), .Info (status, list, explain). <paramref name="cleanConntrack"/> and
/// <paramref name="healthChecks"/> go to the operations (the agent passes the kernel's; tests without a namespace none).
/// </summary>
internal sealed partial class ServiceController(
    NodeContext node,
    IStore store,
    AgentLoops loops,
    Func<ServiceProxyMode, IServiceBackend> createBackend,
    Func<IReadOnlyCollection<ConntrackFilter>, int>? cleanConntrack = null,
    HealthCheckServer? healthChecks = null)
    : IController, IDisposable
{
    /// <summary>How long endpoint-add waits for its put to be programmed before returning anyway.</summary>
    private static readonly TimeSpan EndpointWait = TimeSpan.FromSeconds(5);

    private readonly SemaphoreSlim _nodeConfigSignal = new(0);
    private Reconciler<string, ServicePortState>? _reconciler;
    private ServiceBackendOperations? _ops;
    private Task? _worker;
    private CancellationTokenSource? _workerStop;
    private long _serviceRevision;
    private long _nodeConfigRevision;

    public string Name => "services";

    public ServiceProxyMode Kind => _ops?.Kind ?? ServiceProxyMode.Iptables;

    public async Task StartAsync(CancellationToken ct)
    {
        if (_ops is null)
        {
            _nodeConfigRevision = await store.GetRevisionAsync(ct).ConfigureAwait(false);
            var kind = await WantedKindAsync(ct).ConfigureAwait(false);
            _reconciler = null;
            _ops = new ServiceBackendOperations(createBackend, kind, () => _reconciler!.Desired, loops, cleanConntrack, healthChecks);
            _reconciler = new Reconciler<string, ServicePortState>(_ops, TimeProvider.System,
                new ReconcilerOptions { Name = "services", FullPassInterval = node.Config.ServiceFullSyncInterval });
            // Both caches' contents are in the table before the first write: Services first and their endpoints a
            // moment later would program every Service without endpoints (REJECT) in between, on a restart too.
            await StartCachesAsync(ct).ConfigureAwait(false);
            _workerStop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            _worker = _reconciler.RunAsync(_workerStop.Token);
        }

        // Programmed before the node says it is ready: the first pod's first packet to a ClusterIP is balanced.
        await _reconciler!.WaitIdleAsync(ct).ConfigureAwait(false);
        if (_reconciler.Stats.Errors > 0)
        {
            throw new InvalidOperationException($"programming services failed: {_reconciler.Status().First(r => r.Error is not null).Error}");
        }

        loops.Log($"services: {PortCount} port(s) programmed by {BackendName}");
    }

    public async Task RunAsync(CancellationToken ct)
    {
        // The node's override and the cluster's serviceBackend both choose: `migrate finalize` switches the cluster's.
        var watch = loops.WatchAsync(null, _nodeConfigRevision,
            e => (e.Kind == Kinds.NodeConfig.Name && e.Key == node.Name) || e.Kind == Kinds.ClusterConfig.Name, _nodeConfigSignal, "node config", ct);
        var loop = loops.RunOnSignalAsync(_nodeConfigSignal, SwitchIfWantedAsync, "service backend choice", ct);
        // The interval is read each round: a switch of backend (or of agent.json's lifetimes) changes it.
        var gc = loops.RunOnSignalAsync(_conntrackGcSignal, CollectConntrackAsync, "conntrack gc", () => _ops!.ConntrackGcInterval, ct);
        Task[] all = [watch, loop, gc, _worker!, _caches!];
        await Task.WhenAny(all).ConfigureAwait(false);
        ct.ThrowIfCancellationRequested();
        await Task.WhenAll(all).ConfigureAwait(false);
    }

    /// <summary>
    /// For endpoint-add on eBPF: returns once the endpoint put at <paramref name="revision"/> is programmed and the pod's
    /// new veth carries the tc programs, so the pod's very first packet to a ClusterIP is balanced.
    /// </summary>
    public async Task WaitForEndpointAsync(long revision, CancellationToken ct)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(EndpointWait);
            await _endpointCache!.WaitForRevisionAsync(revision, timeout.Token).ConfigureAwait(false);
            while (Interlocked.Read(ref _endpointsHandled) < revision)
            {
                await Task.Delay(1, timeout.Token).ConfigureAwait(false);
            }

            await _reconciler!.WaitIdleAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            // The cache's watch is behind (the store is slow or down): the pass that sees the endpoint later attaches it.
            loops.Log($"endpoint at revision {revision} not programmed after {EndpointWait.TotalSeconds:0} s; going on without it");
        }

        _ops!.AttachNewInterfaces();
    }

    private async Task SwitchIfWantedAsync(CancellationToken ct)
    {
        var kind = await WantedKindAsync(ct).ConfigureAwait(false);
        if (_ops!.Want(kind))
        {
            Refit();
            await _reconciler!.FullPassAsync(ct).ConfigureAwait(false);
        }
    }

    private async Task<ServiceProxyMode> WantedKindAsync(CancellationToken ct)
    {
        var (nodeConfig, cluster) = await loops.ConfigsAsync(node, "node config", ct).ConfigureAwait(false);
        return nodeConfig?.ServiceBackend ?? node.Config.ServiceBackend ?? cluster.ServiceBackend;
    }

    public void Dispose()
    {
        _workerStop?.Cancel();
        _workerStop?.Dispose();
        _nodeConfigSignal.Dispose();
        _conntrackGcSignal.Dispose();
        _ops?.Dispose();
        foreach (var s in _subscriptions)
        {
            s.Dispose();
        }
    }
}
