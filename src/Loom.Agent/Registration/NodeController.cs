using Loom.Core.Controllers;
using Loom.Core.Model;
using Loom.Core.Pool;
using Loom.Core.Store;

namespace Loom.Agent.Registration;

/// <summary>
/// The node's object in the store under a lease (flannel's subnet lease): written not-ready at start (its peers
/// already learn its VTEP), ready once every other controller has started, then renewed every heartbeat. A node whose
/// agent is gone longer than the lease disappears, and its peers drop their routes to it (they list nodes); its pod
/// CIDR claims are renewed alongside under a lease one grace longer (<see cref="BlockLease"/>), so its blocks return
/// to the pool only once it has been gone that much longer.
/// </summary>
/// <param name="defaultEntry">This node's entry of the cluster's default network, mirrored into the legacy
/// <c>podCidrs</c> / <c>vtepMac</c> (the block claimed at start until the network controller has one).</param>
internal sealed class NodeController(NodeContext node, IStore store, AgentLoops loops, Func<NodeNetwork?> defaultEntry,
    Func<IReadOnlyDictionary<string, NodeNetwork>> networks) : IController, IDisposable
{
    private readonly SemaphoreSlim _poke = new(0);
    private BlockLease? _blocks;
    private long _lease;
    private long? _renewedAt; // Environment.TickCount64 of the node lease's last renewal; null: renew at the next tick
    private long _beats;
    private bool _ready;
    private DateTimeOffset _lastBeat;

    public string Name => "node";

    public async Task StartAsync(CancellationToken ct)
    {
        await RegisterAsync(ready: false, ct).ConfigureAwait(false);
        await RenewBlocksAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Says the node is ready (the CNI config is written): the scheduler may place pods here.</summary>
    public async Task MarkReadyAsync(CancellationToken ct)
    {
        await RegisterAsync(ready: true, ct).ConfigureAwait(false);
        _ready = true;
    }

    /// <summary>Writes the node object now rather than at the next heartbeat: a network's block or VTEP changed.</summary>
    public void Poke() => _poke.Release();

    public async Task RunAsync(CancellationToken ct)
    {
        var every = TimeSpan.FromSeconds(Math.Max(1, node.Config.HeartbeatSeconds));
        while (true)
        {
            var poked = await _poke.WaitAsync(every, ct).ConfigureAwait(false);
            while (_poke.CurrentCount > 0)
            {
                await _poke.WaitAsync(ct).ConfigureAwait(false);
            }

            // The next tick is the retry; a store down for long lets the lease lapse, and LeaseAsync takes a new one.
            try
            {
                var renewed = _renewedAt;
                await RegisterAsync(ready: true, ct).ConfigureAwait(false);
                // The block claims ride on the node lease's renewals (their lease is longer): a claim made since (a
                // network's new block) pokes, and a poke renews.
                if (_renewedAt != renewed || poked)
                {
                    await RenewBlocksAsync(ct).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                _renewedAt = null; // the next tick renews both leases, which may have lapsed meanwhile
                AgentMetrics.LoopFailures.WithLabels("heartbeat", e.GetType().Name).Inc();
                loops.Log($"heartbeat failed, next in {node.Config.HeartbeatSeconds} s: {AgentLoops.Describe(e)}");
            }
        }
    }

    public ControllerStatus Describe() =>
        new(Name, _ready && _lastBeat > DateTimeOffset.UtcNow.AddSeconds(-3 * Math.Max(1, node.Config.HeartbeatSeconds)),
            $"{(_ready ? "ready" : "not ready")}, lease {_lease}, last heartbeat {_lastBeat:HH:mm:ss}", Interlocked.Read(ref _beats));

    /// <summary>Writes this node's object, keeping what others set on it (labels, taints, cordon).</summary>
    private async Task RegisterAsync(bool ready, CancellationToken ct)
    {
        while (true)
        {
            // Our own object, malformed by someone else, is simply rewritten (compare-and-swap on its revision).
            var raw = await store.GetAsync(Kinds.Node.Name, node.Name, ct).ConfigureAwait(false);
            Node? existing = null;
            var rejected = new List<Rejection>();
            if (raw is not null && !TypedStoreExtensions.TryDecode(Kinds.Node, raw.Value, out existing, out var error))
            {
                rejected.Add(new Rejection(Kinds.Node.Name, node.Name, "malformed", $"{error} (rewriting it)"));
            }

            loops.Refused("own node", rejected);
            var iface = node.Config.Iface;
            var legacy = defaultEntry();
            var value = (existing ?? new Node { Name = node.Name, UnderlayInterface = iface, UnderlayIp = node.UnderlayIp }) with
            {
                Name = node.Name,
                UnderlayInterface = iface,
                UnderlayIp = node.UnderlayIp,
                PodCidrs = [legacy?.PodCidr ?? node.PodCidr],
                VtepMac = legacy?.VtepMac,
                Networks = networks(),
                Heartbeat = DateTimeOffset.UtcNow,
                Ready = ready,
            };
            // Not under our lease (gone with a lapsed one, or written by someone else): renew or replace it now.
            var lease = await LeaseAsync(force: raw is null || raw.Lease != _lease, ct).ConfigureAwait(false);
            if (existing is not null && raw!.Lease == lease && value.Heartbeat - existing.Heartbeat < HeartbeatRewrite
                && System.Text.Json.JsonSerializer.Serialize(value with { Heartbeat = existing.Heartbeat }, Kinds.Node.TypeInfo) == raw.Value)
            {
                // Only the timestamp would move: the lease's keep-alive is the liveness, and a rewrite every beat would
                // wake every other agent's node watchers (a network and a policy pass each) for nothing.
                _lastBeat = DateTimeOffset.UtcNow;
                Interlocked.Increment(ref _beats);
                return;
            }

            var put = await store.PutAsync(Kinds.Node, value, expectedRevision: raw?.ModRevision ?? 0, lease: lease, cancellationToken: ct)
                .ConfigureAwait(false);
            if (put.Succeeded)
            {
                _lastBeat = DateTimeOffset.UtcNow;
                Interlocked.Increment(ref _beats);
                return;
            }
        }
    }

    /// <summary>
    /// The node's lease, renewed once a third of its TTL passed (as etcd's clients keep a lease alive) or when
    /// <paramref name="force"/>d, at most every heartbeat; a new one if it lapsed (a put under it moves the node off
    /// the old one). A renewal is a store write, which wakes every agent's watches (SQLite: a file event each): every
    /// heartbeat, that was most of an idle cluster's work. Every heartbeat again while the store is unreachable.
    /// </summary>
    private async Task<long> LeaseAsync(bool force, CancellationToken ct)
    {
        // While the store is out, every beat renews: after a failed write only a write's success says the store is
        // back (a locked SQLite file still serves reads), and the loops waiting out the outage wait for that.
        force |= store is GuardedStore { Health.IsReachable: false };
        var now = Environment.TickCount64;
        if (!force && _lease != 0 && _renewedAt is { } at && now - at < RenewEvery(node.Config).TotalMilliseconds)
        {
            return _lease;
        }

        if (_lease == 0 || !await store.KeepAliveAsync(_lease, ct).ConfigureAwait(false))
        {
            _lease = await store.GrantLeaseAsync(NodeLeaseTtl(node.Config), ct).ConfigureAwait(false);
        }

        _renewedAt = now;
        return _lease;
    }

    /// <summary>A third of the lease's TTL (200 s of the default 600 s), and never more often than the heartbeat.</summary>
    internal static TimeSpan RenewEvery(AgentConfig config) =>
        TimeSpan.FromSeconds(Math.Max(Math.Max(1, config.HeartbeatSeconds), NodeLeaseTtl(config).TotalSeconds / 3));

    /// <summary>The stored object's Heartbeat is rewritten this often at least when nothing else changed (every beat before).</summary>
    internal static readonly TimeSpan HeartbeatRewrite = TimeSpan.FromMinutes(5);

    private static TimeSpan NodeLeaseTtl(AgentConfig config) => TimeSpan.FromSeconds(Math.Max(2, config.NodeLeaseSeconds));

    /// <summary>Renews the blocks' lease with the node's, taking on claims made since (a network's new block) or before.</summary>
    private async Task RenewBlocksAsync(CancellationToken ct)
    {
        _blocks ??= new BlockLease(store, node.Name, BlockLease.Ttl(NodeLeaseTtl(node.Config), TimeSpan.FromSeconds(node.Cluster.PodCidrGraceSeconds)));
        var renewal = await _blocks.RenewAsync(networks().Values.Select(n => n.PodCidr), ct).ConfigureAwait(false);
        if (renewal.Lapsed)
        {
            loops.Log($"pod CIDR lease lapsed (the store was out of reach longer than the node lease + {node.Cluster.PodCidrGraceSeconds} s grace): "
                      + $"this node's claims went with it; {renewal.Held} claim(s) held again"
                      + (renewal.Lost.Count > 0 ? $"; {string.Join(", ", renewal.Lost)} claimed by another node meanwhile: restart this agent to take a new block" : ""));
        }

        if (renewal.Moved.Count > 0)
        {
            loops.Log($"pod CIDR claims {string.Join(", ", renewal.Moved)} held under lease {renewal.Lease} "
                      + (renewal.Lease == 0 ? "(none: podCidrGraceSeconds 0 keeps them forever)" : $"(node lease + {node.Cluster.PodCidrGraceSeconds} s grace)"));
        }
    }

    public void Dispose() => _poke.Dispose();
}
