using System.Net.NetworkInformation;
using Loom.Agent.Overlay;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Linux;

namespace Loom.Agent;

internal sealed partial class AgentHost
{
    /// <summary>
    /// Writes this node's object, keeping what others set on it (labels, taints, cordon). Returns the store
    /// revision to watch from.
    /// </summary>
    private async Task<long> RegisterNodeAsync(bool ready, CancellationToken ct)
    {
        while (true)
        {
            var existing = await store.GetAsync(Kinds.Node, _node, ct).ConfigureAwait(false);
            var node = (existing?.Value ?? new Node { Name = _node, UnderlayInterface = config.Iface, UnderlayIp = _underlayIp }) with
            {
                UnderlayInterface = config.Iface,
                UnderlayIp = _underlayIp,
                PodCidrs = [_podCidr],
                VtepMac = _vxlan is null ? null : MacAddress.Format(_vxlan.HardwareAddr),
                Heartbeat = DateTimeOffset.UtcNow,
                Ready = ready,
            };
            var put = await store.PutAsync(Kinds.Node, node, expectedRevision: existing?.Revision ?? 0, lease: await LeaseAsync(ct).ConfigureAwait(false), cancellationToken: ct).ConfigureAwait(false);
            if (put.Succeeded)
            {
                return put.Revision;
            }
        }
    }

    /// <summary>The node's lease, renewed; a new one if it lapsed (a put under it moves the node off the old one).</summary>
    private async Task<long> LeaseAsync(CancellationToken ct)
    {
        if (_lease == 0 || !await store.KeepAliveAsync(_lease, ct).ConfigureAwait(false))
        {
            _lease = await store.GrantLeaseAsync(TimeSpan.FromSeconds(Math.Max(2, config.NodeLeaseSeconds)), ct).ConfigureAwait(false);
        }

        return _lease;
    }

    private async Task HeartbeatAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Math.Max(1, config.HeartbeatSeconds)));
        while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
        {
            try
            {
                await RegisterNodeAsync(ready: true, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or InvalidOperationException)
            {
                Log($"heartbeat failed: {e.Message}");
            }
        }
    }

    /// <summary>Desired peers are all other nodes that have a pod CIDR and a VTEP MAC.</summary>
    private async Task ReconcilePeersAsync(CancellationToken ct)
    {
        var (nodes, _) = await store.ListAsync(Kinds.Node, ct).ConfigureAwait(false);
        var peers = new List<VxlanPeer>();
        foreach (var n in nodes.Select(v => v.Value).Where(n => n.Name != _node && n.PodCidrs.Count > 0 && n.VtepMac is not null))
        {
            var mac = PhysicalAddress.Parse(n.VtepMac!.Replace(':', '-'));
            peers.AddRange(n.PodCidrs.Select(c => new VxlanPeer(n.Name, c, n.UnderlayIp, mac)));
        }

        var changes = VxlanRoutes.Reconcile(_nl!, _vxlan!, peers);
        AgentMetrics.OverlaySyncs.Inc();
        AgentMetrics.TunnelPeers.Set(peers.Count);
        lock (_stateLock)
        {
            _peers = peers;
            _syncs++;
            _lastSync = DateTimeOffset.UtcNow;
        }

        if (changes.Any)
        {
            Log($"overlay: {peers.Count} peer(s) [{string.Join(", ", peers.Select(p => $"{p.Node} {p.PodCidr} via {p.UnderlayIp}"))}]: +{changes.Added} -{changes.Removed} kernel entries");
        }
    }
}
