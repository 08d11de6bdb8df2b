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
            // Our own object, malformed by someone else, is simply rewritten (compare-and-swap on its revision).
            var raw = await store.GetAsync(Kinds.Node.Name, _node, ct).ConfigureAwait(false);
            Node? existing = null;
            var rejected = new List<Rejection>();
            if (raw is not null && !TypedStoreExtensions.TryDecode(Kinds.Node, raw.Value, out existing, out var error))
            {
                rejected.Add(new Rejection(Kinds.Node.Name, _node, "malformed", $"{error} (rewriting it)"));
            }

            Refused("own node", rejected);

            var node = (existing ?? new Node { Name = _node, UnderlayInterface = config.Iface, UnderlayIp = _underlayIp }) with
            {
                Name = _node,
                UnderlayInterface = config.Iface,
                UnderlayIp = _underlayIp,
                PodCidrs = [_podCidr],
                VtepMac = _vxlan is null ? null : MacAddress.Format(_vxlan.HardwareAddr),
                Heartbeat = DateTimeOffset.UtcNow,
                Ready = ready,
            };
            var put = await store.PutAsync(Kinds.Node, node, expectedRevision: raw?.ModRevision ?? 0, lease: await LeaseAsync(ct).ConfigureAwait(false), cancellationToken: ct).ConfigureAwait(false);
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
            // The next tick is the retry; a store down for long lets the lease lapse, and LeaseAsync takes a new one.
            try
            {
                await RegisterNodeAsync(ready: true, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                AgentMetrics.LoopFailures.WithLabels("heartbeat", e.GetType().Name).Inc();
                Log($"heartbeat failed, next in {config.HeartbeatSeconds} s: {(IsBug(e) ? e.ToString() : $"{e.GetType().Name}: {e.Message}")}");
            }
        }
    }

    /// <summary>
    /// Desired peers are all other nodes that have a pod CIDR and a VTEP MAC, as far as the cluster config and the pod-CIDR
    /// claims back them (<see cref="PeerCheck"/>); a node object that does not decode, or fails the check, gets no route.
    /// </summary>
    private async Task ReconcilePeersAsync(CancellationToken ct)
    {
        var rejected = new List<Rejection>();
        var (nodes, _) = await store.ListValidAsync(Kinds.Node, Malformed(Kinds.Node.Name, rejected), ct).ConfigureAwait(false);
        var (claims, _) = await store.ListValidAsync(Kinds.PodCidr, Malformed(Kinds.PodCidr.Name, rejected), ct).ConfigureAwait(false);
        var peers = PeerCheck.Peers(_node, _underlayIp, _cluster, nodes, claims.Select(c => c.Value), rejected);
        Refused("overlay", rejected);

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
