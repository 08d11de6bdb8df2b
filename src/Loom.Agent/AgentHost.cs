using System.Net;
using System.Net.Sockets;
using Loom.Agent.Cni;
using Loom.Agent.Masq;
using Loom.Agent.Overlay;
using Loom.Core.Model;
using Loom.Core.Pool;
using Loom.Core.Store;
using Loom.Linux;

namespace Loom.Agent;

/// <summary>
/// One node's agent. Start-up order matters: the node's datapath (tunnel device, peers, masquerade) is
/// programmed and the API socket is listening before the CNI config appears, so the first pod never lands on
/// a node that cannot route it. Nothing is flushed on start: an agent restarted after SIGKILL adopts what the
/// kernel has and only corrects differences, so established flows never notice. Partial files by concern.
/// </summary>
internal sealed partial class AgentHost(AgentConfig config, IStore store, TextWriter log) : IDisposable
{
    private readonly string _node = config.Node!;
    private readonly SemaphoreSlim _reconcile = new(0);
    private readonly Lock _stateLock = new();
    private INetlink? _nl;
    private ClusterConfig _cluster = new();
    private IPNetwork _podCidr;
    private IPAddress _underlayIp = IPAddress.None;
    private Link? _vxlan;
    private bool _ipMasq;
    private IReadOnlyList<VxlanPeer> _peers = [];
    private long _syncs;
    private long _lease;
    private DateTimeOffset _lastSync;
    private readonly DateTimeOffset _started = DateTimeOffset.UtcNow;
    private readonly InvalidObjects _invalid = new();

    public async Task RunAsync(CancellationToken ct)
    {
        // Checked before the kernel is touched: the tunnel device named here is deleted and recreated.
        _cluster = await RetryAsync("reading the cluster config", ReadClusterConfigAsync, ct).ConfigureAwait(false);
        ClusterCheck.Validate(_cluster, config);
        using var nl = Netlink.Open();
        _nl = nl;
        _ipMasq = config.IpMasq ?? _cluster.IpMasq;
        var underlay = FindUnderlay(nl);
        Log($"node {_node}: underlay {config.Iface} {_underlayIp} mtu {underlay.Mtu}");

        _podCidr = await RetryAsync("pod CIDR allocation", AllocatePodCidrAsync, ct).ConfigureAwait(false);
        Log($"pod CIDR {_podCidr} from pools {string.Join(", ", _cluster.PodCidrPools)}");

        _vxlan = await RetryAsync("tunnel device", _ => Task.FromResult(VxlanDevice.Ensure(nl, _cluster.Tunnel.Device, (uint)_cluster.Tunnel.Vni,
            (ushort)_cluster.Tunnel.Port, _underlayIp, underlay, _podCidr)), ct).ConfigureAwait(false);
        Log($"tunnel {_vxlan.Name}: vni {_cluster.Tunnel.Vni} port {_cluster.Tunnel.Port} mtu {_vxlan.Mtu} vtep {MacAddress.Format(_vxlan.HardwareAddr)}");

        Sysctl.Set("net.ipv4.ip_forward", "1");
        await RetryAsync("masquerade", _ =>
        {
            NodeMasq.Sync(_cluster.PodCidrPools, _podCidr, _ipMasq);
            return Task.CompletedTask;
        }, ct).ConfigureAwait(false);
        var revision = await RetryAsync("node registration", c => RegisterNodeAsync(ready: false, c), ct).ConfigureAwait(false);
        await RetryAsync("overlay reconcile", ReconcilePeersAsync, ct).ConfigureAwait(false);

        var serviceRevision = await RetryAsync("service watch start", c => store.GetRevisionAsync(c), ct).ConfigureAwait(false);
        var caches = await StartServiceCachesAsync(ct).ConfigureAwait(false);
        await RetryAsync("service sync", SyncServicesAsync, ct).ConfigureAwait(false);
        using var metrics = AgentMetrics.Start(config.MetricsAddress);
        using var api = StartApi(ct);
        WriteCniConfig(_vxlan.Mtu);
        await RetryAsync("node registration", c => RegisterNodeAsync(ready: true, c), ct).ConfigureAwait(false);
        Log($"ready: {Path.Combine(config.CniConfDir, NodeCniConfig.ConflistName)} written");

        // Pod CIDR claims back the peers' routes (PeerCheck), so a claim's change is an overlay change too.
        var watch = WatchAsync(null, revision, e => (e.Kind == Kinds.Node.Name && e.Key != _node) || e.Kind == Kinds.PodCidr.Name, _reconcile, "node", ct);
        var heartbeat = HeartbeatAsync(ct);
        var loop = RunOnSignalAsync(_reconcile, ReconcilePeersAsync, "overlay reconcile", ct);
        var serviceWatch = WatchAsync(null, serviceRevision, ServiceWatchEvent, _serviceSignal, "service", ct);
        var serviceLoop = RunOnSignalAsync(_serviceSignal, SyncServicesAsync, "service sync", ct);
        Task[] all = [watch, heartbeat, loop, serviceWatch, serviceLoop, caches];
        await Task.WhenAny(all).ConfigureAwait(false);
        ct.ThrowIfCancellationRequested();
        await Task.WhenAll(all).ConfigureAwait(false); // surfaces the failure
    }

    /// <summary>The cluster config; one that does not decode stops the start (every node would refuse it alike).</summary>
    private async Task<ClusterConfig> ReadClusterConfigAsync(CancellationToken ct)
    {
        try
        {
            return await NodeAgent.ClusterConfigAsync(store, ct).ConfigureAwait(false);
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new AgentStartException($"the cluster config in the store (config/cluster) is malformed: {e.Message}", e);
        }
    }

    private Link FindUnderlay(INetlink nl)
    {
        var link = nl.LinkByName(config.Iface)
                   ?? throw new AgentStartException($"underlay interface {config.Iface} does not exist (set --iface or \"iface\")");
        var addrs = nl.AddrList(link.Index, AddressFamily.InterNetwork);
        var addr = (addrs.Count > 0 ? addrs[0] : null) ?? throw new AgentStartException($"underlay interface {config.Iface} has no IPv4 address");
        _underlayIp = addr.Ip;
        return link;
    }

    private async Task<IPNetwork> AllocatePodCidrAsync(CancellationToken ct)
    {
        try
        {
            return await PodCidrAllocator.Create(store, _cluster).AllocateAsync(_node, ct).ConfigureAwait(false);
        }
        catch (PodCidrPoolExhaustedException e)
        {
            throw new AgentStartException(e.Message, e);
        }
    }

    private void WriteCniConfig(int mtu)
    {
        Directory.CreateDirectory(config.StateDir);
        NodeCniConfig.WriteAtomically(config.SubnetFile, NodeCniConfig.RenderSubnetEnv(_cluster.PodCidrPools, _podCidr, mtu, _ipMasq));
        NodeCniConfig.WriteAtomically(Path.Combine(config.CniConfDir, NodeCniConfig.ConflistName), NodeCniConfig.RenderConflist(config, mtu));
    }

    public void Dispose()
    {
        _reconcile.Dispose();
        _serviceSignal.Dispose();
        _serviceLock.Dispose();
        (_services as IDisposable)?.Dispose();
    }

    /// <summary>Logs what a pass refused that the previous pass of <paramref name="scope"/> did not; see <see cref="InvalidObjects"/>.</summary>
    private void Refused(string scope, IReadOnlyCollection<Rejection> rejected)
    {
        foreach (var r in _invalid.Report(scope, rejected))
        {
            Log($"refused {r} ({r.Reason}); skipped");
        }
    }

    /// <summary>An <c>onInvalid</c> for the store's tolerant reads: the object does not decode.</summary>
    private static Action<string, string> Malformed(string kind, List<Rejection> rejected) =>
        (key, reason) => rejected.Add(new Rejection(kind, key, "malformed", reason));

    private void Log(string message) =>
        log.WriteLine($"{DateTimeOffset.UtcNow:HH:mm:ss.fff} {message}");
}
