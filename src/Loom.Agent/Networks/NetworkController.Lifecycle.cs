using System.Net;
using System.Net.Sockets;
using Loom.Agent.Cni;
using Loom.Core.Ipam;
using Loom.Core.Model;
using Loom.Core.Pool;
using Loom.Core.Store;
using Loom.Datapath.Networks;
using RoutingMode = Loom.Core.Model.RoutingMode;
using Loom.Linux;

namespace Loom.Agent.Networks;

internal sealed partial class NetworkController
{
    /// <summary>Removes networks no longer wanted (or whose routing changed), then adds the missing ones.</summary>
    private async Task ApplyNetworksAsync(IReadOnlyList<Network> wanted, HashSet<string> undecoded, CancellationToken ct)
    {
        await RetryReleasesAsync(ct).ConfigureAwait(false);
        var byName = wanted.ToDictionary(n => n.Name, StringComparer.Ordinal);
        foreach (var (name, inst) in _networks.ToList())
        {
            if (undecoded.Contains(name))
            {
                continue; // unreadable now, not deleted: it keeps running as last seen
            }

            if (!byName.TryGetValue(name, out var next))
            {
                await RemoveAsync(inst, released: true, ct).ConfigureAwait(false);
            }
            else if (inst.SameRouting(next))
            {
                inst.Network = next;
            }
            else if (inst.SameBlocks(next))
            {
                await RetireAsync(inst, ct).ConfigureAwait(false);
            }
            else
            {
                await RemoveAsync(inst, released: false, ct).ConfigureAwait(false);
            }
        }

        foreach (var n in wanted.Where(n => !_networks.ContainsKey(n.Name)))
        {
            try
            {
                await AddAsync(n, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (!ct.IsCancellationRequested && e is not OutOfMemoryException)
            {
                _errors[n.Name] = e.Message;
            }
        }

        DeleteRetiredDevices();
    }

    /// <summary>
    /// Make before break for a change of routing only (tunnel to native, another tunnel): the instance stops writing
    /// and goes, but its routes stay until the new instance's first full pass replaces each in place (same
    /// destination, same metric), and its tunnel device stays <see cref="RetiredGrace"/> with no route through it,
    /// so packets a peer still tunnels (it switches a moment later) are received, not refused.
    /// </summary>
    private async Task RetireAsync(NetworkInstance inst, CancellationToken ct)
    {
        await inst.StopAsync().ConfigureAwait(false);
        var device = inst.RefreshDevice();
        _networks.Remove(inst.Network.Name);
        inst.Dispose();
        if (device is not null)
        {
            _retired.Add(new RetiredDevice(device.Name, device.Index, DateTimeOffset.UtcNow + RetiredGrace));
            _ = SignalAfterAsync(RetiredGrace, ct);
        }

        loops.Log($"network {inst.Network.Name}: routing changed; its routes are replaced in place"
                  + (device is null ? "" : $", tunnel device {device.Name} kept {RetiredGrace.TotalSeconds:0} s for packets peers still tunnel"));
    }

    /// <summary>Deletes retired tunnel devices whose grace is over (or every one, with <paramref name="all"/>), unless a running network took the name back.</summary>
    private void DeleteRetiredDevices(bool all = false)
    {
        // The signal's timer runs on a coarse clock and may fire a few ms before Until: without the slack the device
        // stayed until the next periodic pass (30 s), now that heartbeats no longer cause a pass every 5 s.
        var now = DateTimeOffset.UtcNow + TimeSpan.FromMilliseconds(100);
        foreach (var r in _retired.Where(r => all || r.Until <= now).ToList())
        {
            _retired.Remove(r);
            var inUse = _networks.Values.Any(n => n.Network.RoutingMode == RoutingMode.Tunnel && n.Network.Tunnel?.Device == r.Name);
            if (!inUse && _nl!.LinkByName(r.Name) is { Kind: "vxlan" } link && link.Index == r.Index)
            {
                _nl.LinkDel(link.Index);
                loops.Log($"networks: deleted retired tunnel device {r.Name}");
            }
        }
    }

    private async Task SignalAfterAsync(TimeSpan delay, CancellationToken ct)
    {
        try
        {
            await Task.Delay(delay, ct).ConfigureAwait(false);
            _signal.Release();
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            // The agent is stopping: the next life's sweep deletes a device no network names.
        }
    }

    /// <summary>Claims the node's block of the network's pool, creates its device and router IP, starts its reconciler.</summary>
    private async Task AddAsync(Network n, CancellationToken ct)
    {
        var block = await PodCidrAllocator.Create(store, [n.PodCidr], n.NodeMaskSize).AllocateAsync(node.Name, ct).ConfigureAwait(false);
        var inst = new NetworkInstance(n, block, _underlayIndex, node.UnderlayIp);
        try
        {
            inst.Start();
            if (n.Plumbing == Plumbing.Routed)
            {
                RouterDevice.Ensure(_nl!, IpRange.DefaultGateway(block));
            }
        }
        catch
        {
            await inst.RemoveAsync().ConfigureAwait(false); // the device it may have made goes too
            inst.Dispose();
            throw;
        }

        _networks[n.Name] = inst;
        loops.Log($"network {n.Name}: block {block} of {n.PodCidr}, {Describe(n, inst.Device)}");
    }

    /// <summary>
    /// Deletes the network's device and routes on this node; with <paramref name="released"/> (the network left the
    /// store) also the pods' gateway (router IP, <c>loom_host</c> once no routed network is left, or cni0), the node's
    /// claim on its block and its IPAM directory.
    /// </summary>
    private async Task RemoveAsync(NetworkInstance inst, bool released, CancellationToken ct)
    {
        var n = inst.Network;
        var deleted = await inst.RemoveAsync().ConfigureAwait(false);
        _networks.Remove(n.Name);
        inst.Dispose();

        // A network re-created for a routing change keeps its block, and its pods their gateway (router IP, cni0).
        if (released)
        {
            deleted += RemoveGateway(n, IpRange.DefaultGateway(inst.Block));
            RemoveIpamState(n);
            _releases.Add(n);
            await RetryReleasesAsync(ct).ConfigureAwait(false);
        }

        loops.Log($"network {n.Name}: removed from this node ({deleted} kernel object(s) deleted{(released ? $", block {inst.Block} released" : "")})");
    }

    /// <summary>Frees this node's claims in the pools of networks gone; one the store refused is tried again next pass.</summary>
    private async Task RetryReleasesAsync(CancellationToken ct)
    {
        foreach (var n in _releases.ToList())
        {
            try
            {
                await PodCidrAllocator.Create(store, [n.PodCidr], n.NodeMaskSize).ReleaseAsync(node.Name, ct).ConfigureAwait(false);
                _releases.Remove(n);
            }
            catch (Exception e) when (!ct.IsCancellationRequested && e is not OutOfMemoryException)
            {
                _errors[n.Name] = $"releasing its block: {e.Message}";
            }
        }
    }

    /// <summary>The pods' gateway of a network gone: its router IP (and loom_host once no routed network is left), or cni0.</summary>
    private int RemoveGateway(Network n, IPAddress router)
    {
        var deleted = 0;
        if (n.Plumbing == Plumbing.Routed && _nl!.LinkByName(RouterDevice.DefaultName) is { } host)
        {
            if (_nl.AddrList(host.Index, AddressFamily.InterNetwork).Any(a => a.Ip.Equals(router)))
            {
                _nl.AddrDel(host.Index, router, 32);
                deleted++;
            }

            if (!_networks.Values.Any(o => o.Network.Plumbing == Plumbing.Routed))
            {
                RouterDevice.Delete(_nl);
                deleted++;
            }
        }
        else if (n.Plumbing == Plumbing.Bridge && _nl!.LinkByName(NodeCniConfig.BridgeName) is { } bridge
                 && _nl.AddrList(bridge.Index, AddressFamily.InterNetwork).Any(a => a.Ip.Equals(router)))
        {
            _nl.LinkDel(bridge.Index); // the bridge loom-cni made for this network's pods; they are gone with it
            deleted++;
        }

        return deleted;
    }

    /// <summary>
    /// loom-cni's IPAM directory of a routed network that left the store (the bridge network's is shared by name, and
    /// stays). Only once it holds no address: a pod still running there keeps its lease on disk.
    /// </summary>
    private void RemoveIpamState(Network n)
    {
        var dir = Path.Combine(node.Config.IpamDataDir, n.Name);
        if (n.Plumbing != Plumbing.Routed || !Directory.Exists(dir))
        {
            return;
        }

        if (Directory.EnumerateFiles(dir).Any(f => IPAddress.TryParse(Path.GetFileName(f), out _)))
        {
            loops.Log($"network {n.Name}: IPAM state {dir} kept: it still holds addresses of running pods");
            return;
        }

        Directory.Delete(dir, recursive: true);
    }

    /// <summary>
    /// Once per agent life: what a network deleted while the agent was down left. Loom tunnel devices no network
    /// names, Loom routes (protocol 76) inside no network's pool, router IPs on <c>loom_host</c> of no routed network.
    /// </summary>
    private async Task SweepAsync(IReadOnlyList<Network> wanted, CancellationToken ct)
    {
        var devices = wanted.Where(n => n.RoutingMode == RoutingMode.Tunnel && n.Tunnel is not null).Select(n => n.Tunnel!.Device).ToHashSet(StringComparer.Ordinal);
        foreach (var link in _nl!.LinkList().Where(l => l.Kind == "vxlan" && l.Name.StartsWith(ClusterCheck.TunnelPrefix, StringComparison.Ordinal) && !devices.Contains(l.Name)))
        {
            _nl.LinkDel(link.Index);
            loops.Log($"networks: deleted tunnel device {link.Name}, of no network in the store");
        }

        bool InSomePool(IPNetwork dst) => wanted.Any(n => n.PodCidr.PrefixLength <= dst.PrefixLength && n.PodCidr.Contains(dst.BaseAddress));
        var (claims, _) = await store.ListAsync(Kinds.PodCidr, ct).ConfigureAwait(false);
        foreach (var claim in claims.Where(c => c.Value.Node == node.Name && !InSomePool(c.Value.Cidr)))
        {
            // CAS on the claim's revision: never free a block someone re-claimed since the list.
            await store.DeleteAsync(Kinds.PodCidr, claim.Key, claim.Revision, ct).ConfigureAwait(false);
            loops.Log($"networks: released block {claim.Value.Cidr}, in no network's pool");
        }

        foreach (var route in _nl.RouteList(AddressFamily.InterNetwork).Where(r => r.Protocol == NetworkRouting.Protocol && !InSomePool(r.Destination)))
        {
            _nl.RouteDel(route);
            loops.Log($"networks: deleted route {route.Destination}, in no network's pool");
        }

        // By the store, not by what this pass managed to add: a routed network whose add failed (a store hiccup while
        // claiming) keeps its router IP, or its running pods would lose their gateway until the next pass.
        if (_nl.LinkByName(RouterDevice.DefaultName) is { } host)
        {
            var routed = wanted.Where(n => n.Plumbing == Plumbing.Routed).ToList();
            foreach (var a in _nl.AddrList(host.Index, AddressFamily.InterNetwork).Where(a => !routed.Any(n => n.PodCidr.Contains(a.Ip))))
            {
                _nl.AddrDel(host.Index, a.Ip, a.PrefixLength);
            }

            if (routed.Count == 0)
            {
                RouterDevice.Delete(_nl);
            }
        }
    }

    private static string Describe(Network n, Link? device) =>
        (n.RoutingMode == RoutingMode.Tunnel ? $"tunnel {device?.Name} port {n.Tunnel?.Port} vni {n.Tunnel?.Vni}" : "native routing")
        + $", {n.Plumbing.ToString().ToLowerInvariant()} plumbing"
        + (device is null ? "" : $", vtep {MacAddress.Format(device.HardwareAddr)} mtu {device.Mtu}");
}
