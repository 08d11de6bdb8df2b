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

    public async Task RunAsync(CancellationToken ct)
    {
        using var nl = Netlink.Open();
        _nl = nl;
        _cluster = await NodeAgent.ClusterConfigAsync(store, ct).ConfigureAwait(false);
        _ipMasq = config.IpMasq ?? _cluster.IpMasq;
        var underlay = FindUnderlay(nl);
        Log($"node {_node}: underlay {config.Iface} {_underlayIp} mtu {underlay.Mtu}");

        _podCidr = await AllocatePodCidrAsync(ct).ConfigureAwait(false);
        Log($"pod CIDR {_podCidr} from pools {string.Join(", ", _cluster.PodCidrPools)}");

        _vxlan = VxlanDevice.Ensure(nl, _cluster.Tunnel.Device, (uint)_cluster.Tunnel.Vni, (ushort)_cluster.Tunnel.Port, _underlayIp, underlay, _podCidr);
        Log($"tunnel {_vxlan.Name}: vni {_cluster.Tunnel.Vni} port {_cluster.Tunnel.Port} mtu {_vxlan.Mtu} vtep {MacAddress.Format(_vxlan.HardwareAddr)}");

        Sysctl.Set("net.ipv4.ip_forward", "1");
        NodeMasq.Sync(_cluster.PodCidrPools, _podCidr, _ipMasq);
        var revision = await RegisterNodeAsync(ready: false, ct).ConfigureAwait(false);
        await ReconcilePeersAsync(ct).ConfigureAwait(false);

        var serviceRevision = await store.GetRevisionAsync(ct).ConfigureAwait(false);
        await SyncServicesAsync(ct).ConfigureAwait(false);
        using var metrics = AgentMetrics.Start(config.MetricsAddress);
        using var api = StartApi(ct);
        WriteCniConfig(_vxlan.Mtu);
        await RegisterNodeAsync(ready: true, ct).ConfigureAwait(false);
        Log($"ready: {Path.Combine(config.CniConfDir, NodeCniConfig.ConflistName)} written");

        var watch = WatchAsync(Kinds.Node.Name, revision, e => e.Key != _node, _reconcile, "node", ct);
        var heartbeat = HeartbeatAsync(ct);
        var loop = RunOnSignalAsync(_reconcile, ReconcilePeersAsync, "overlay reconcile", ct);
        var serviceWatch = WatchAsync(null, serviceRevision,
            e => e.Kind == Kinds.Service.Name || e.Kind == Kinds.Endpoint.Name || (e.Kind == Kinds.NodeConfig.Name && e.Key == _node),
            _serviceSignal, "service", ct);
        var serviceLoop = RunOnSignalAsync(_serviceSignal, SyncServicesAsync, "service sync", ct);
        Task[] all = [watch, heartbeat, loop, serviceWatch, serviceLoop];
        await Task.WhenAny(all).ConfigureAwait(false);
        ct.ThrowIfCancellationRequested();
        await Task.WhenAll(all).ConfigureAwait(false); // surfaces the failure
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

    private void Log(string message) =>
        log.WriteLine($"{DateTimeOffset.UtcNow:HH:mm:ss.fff} {message}");
}
