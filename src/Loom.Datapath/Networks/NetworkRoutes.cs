using Loom.Core.Reconcile;
using Loom.Linux;

namespace Loom.Datapath.Networks;

/// <summary>
/// One network's routing on this node: a <see cref="Reconciler{TKey, TValue}"/> of peer rows (keyed by node name)
/// over <see cref="NetworkRouteOperations"/>. The agent runs one per network: <see cref="RunAsync"/>, then
/// <see cref="SetPeers"/> on every change of the peers, <see cref="IReconciler{TKey, TValue}.FullPassAsync"/> once
/// they are complete (to clear what a previous life left), and when the network goes, stop the worker and
/// <see cref="Remove"/>.
/// </summary>
public sealed class NetworkRoutes
{
    private readonly Reconciler<string, NetworkPeer> _reconciler;
    private readonly Lock _gate = new();
    private bool _running;
    private bool _removed;

    public NetworkRoutes(INetlink netlink, NetworkRouting routing, TimeProvider time, ReconcilerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(routing);
        Operations = new NetworkRouteOperations(netlink, routing);
        _reconciler = new Reconciler<string, NetworkPeer>(Operations, time, options ?? new ReconcilerOptions { Name = $"routes/{routing.Name}" },
            StringComparer.Ordinal);
    }

    public NetworkRouting Routing => Operations.Routing;

    public NetworkRouteOperations Operations { get; }

    /// <summary>The peer rows with their state, for status and for waiting.</summary>
    public IReconciler<string, NetworkPeer> Reconciler => _reconciler;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_removed, this);
            _running = true;
        }

        try
        {
            await _reconciler.RunAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            lock (_gate)
            {
                _running = false;
            }
        }
    }

    /// <summary>
    /// Makes the peer rows exactly <paramref name="peers"/>. A peer that cannot be routed (see
    /// <see cref="NetworkRouting.PeerError"/>), two with one node name or one block: <see cref="ArgumentException"/>
    /// naming it, and no row changes.
    /// </summary>
    public void SetPeers(IReadOnlyCollection<NetworkPeer> peers)
    {
        ArgumentNullException.ThrowIfNull(peers);
        foreach (var p in peers)
        {
            ArgumentNullException.ThrowIfNull(p, nameof(peers));
            Operations.Check(p.Node, p);
        }

        if (peers.GroupBy(p => p.Node, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice)
        {
            throw new ArgumentException($"network {Routing.Name}: peer {twice.Key} listed {twice.Count()} times");
        }

        Operations.CheckDistinct(peers);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_removed, this);
            foreach (var gone in _reconciler.Desired.Keys.Except(peers.Select(p => p.Node), StringComparer.Ordinal).ToList())
            {
                _reconciler.Delete(gone);
            }

            foreach (var p in peers)
            {
                _reconciler.Upsert(p.Node, p);
            }
        }
    }

    /// <summary>
    /// Deletes the network from this node (<see cref="NetworkRouteOperations.Remove"/>) and retires this instance.
    /// Refused while <see cref="RunAsync"/> runs: its next write would bring the network back.
    /// </summary>
    public int Remove()
    {
        lock (_gate)
        {
            if (_running)
            {
                throw new InvalidOperationException($"network {Routing.Name}: stop the reconciler before removing the network");
            }

            _removed = true;
        }

        return Operations.Remove();
    }
}
