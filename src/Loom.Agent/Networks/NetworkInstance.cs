using System.Net;
using Loom.Core.Model;
using Loom.Datapath.Networks;
using Loom.Linux;
using DatapathRouting = Loom.Datapath.Networks.RoutingMode;

namespace Loom.Agent.Networks;

/// <summary>
/// One network running on this node: its block, its tunnel device (tunnel routing), and the reconciler that keeps a
/// route (and on a tunnel, a neighbour and an FDB entry) per peer. Its own netlink socket, since its reconciler's
/// worker writes while the controller reads other networks' devices.
/// </summary>
internal sealed class NetworkInstance : IDisposable
{
    private readonly INetlink _nl;
    private readonly CancellationTokenSource _stop = new();
    private Task? _worker;

    public NetworkInstance(Network network, IPNetwork block, int underlayIndex, IPAddress underlayIp)
    {
        Network = network;
        Block = block;
        var routing = new NetworkRouting(network.Name, network.RoutingMode == Core.Model.RoutingMode.Native ? DatapathRouting.Native : DatapathRouting.Tunnel,
            network.PodCidr, block, underlayIndex, underlayIp)
        {
            Tunnel = network.RoutingMode == Core.Model.RoutingMode.Tunnel && network.Tunnel is { } t
                ? new TunnelSettings(t.Device, (ushort)t.Port, (uint)t.Vni)
                : null,
        };
        routing.Validate();
        _nl = Netlink.Open();
        Routes = new NetworkRoutes(_nl, routing, TimeProvider.System);
    }

    /// <summary>The stored object as last seen; fields that do not change the routing (host routing, masquerade) follow it.</summary>
    public Network Network { get; set; }

    public IPNetwork Block { get; }

    public NetworkRoutes Routes { get; }

    /// <summary>The VXLAN device of a tunnel network once created; null on a native one.</summary>
    public Link? Device { get; private set; }

    /// <summary>A first full pass over a complete peer list ran: what a previous life left is gone, every peer written.</summary>
    public bool Synced { get; set; }

    /// <summary>Creates or adopts the device and starts the reconciler's worker.</summary>
    public void Start()
    {
        Device = Routes.Operations.EnsureDevice();
        _worker ??= Task.Run(() => Routes.RunAsync(_stop.Token));
    }

    /// <summary>The device as the kernel has it now (its MTU and MAC for the CNI config and the node object).</summary>
    public Link? RefreshDevice() => Device = Network.Tunnel is { } t && Network.RoutingMode == Core.Model.RoutingMode.Tunnel ? _nl.LinkByName(t.Device) : null;

    /// <summary>Whether <paramref name="next"/> can be run by this instance (same pool, block size and way of routing).</summary>
    public bool SameRouting(Network next) =>
        next.PodCidr.Equals(Network.PodCidr) && next.NodeMaskSize == Network.NodeMaskSize && next.Plumbing == Network.Plumbing
        && next.RoutingMode == Network.RoutingMode && Equals(next.Tunnel, Network.Tunnel) && next.AutoDirectNodeRoutes == Network.AutoDirectNodeRoutes;

    /// <summary>Whether <paramref name="next"/> keeps the pool, block size and plumbing: only the way to peers changes, blocks and pods stay.</summary>
    public bool SameBlocks(Network next) =>
        next.PodCidr.Equals(Network.PodCidr) && next.NodeMaskSize == Network.NodeMaskSize && next.Plumbing == Network.Plumbing;

    /// <summary>Stops the worker and deletes what the network owns here: its device, its routes. Returns objects deleted.</summary>
    public async Task<int> RemoveAsync()
    {
        await StopAsync().ConfigureAwait(false);
        return Routes.Remove();
    }

    public async Task StopAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_worker is { } w)
        {
            try
            {
                await w.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _stop.Dispose();
        _nl.Dispose();
    }
}
