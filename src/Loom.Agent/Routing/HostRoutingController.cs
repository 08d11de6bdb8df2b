using Loom.Agent.Networks;
using Loom.Core.Cni;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Datapath.Routing;
using Loom.Linux;

namespace Loom.Agent.Routing;

/// <summary>
/// eBPF host routing (bpf/host_routing.o) for the networks with <c>hostRouting: bpf</c>: hr_from_pod on the host veth
/// of each of their pods on this node (found by the alias loom-cni gives routed veths,
/// <see cref="CniNames.RoutedVethAlias"/>) and hr_from_underlay on the underlay device. Loom.Linux has no link event
/// subscription, so new and deleted pods are found by a link dump every second, and at once when the networks change;
/// with no such network, every 30 s only (leftovers to remove), so an idle node without it is not woken each second.
/// A veth gone: detached; no such network left: programs and pins removed (also those a previous run left).
/// </summary>
internal sealed class HostRoutingController : NetworkFollower
{
    private readonly NodeContext _node;
    private readonly Func<PodDelivery> _delivery;
    private readonly Lock _pass = new();
    private BpfHostRouting? _routing;

    /// <param name="delivery">
    /// How packets reach local pods: <see cref="PodDelivery.Egress"/> while the eBPF service backend has its reverse
    /// NAT on the pods' veths' egress (which <see cref="PodDelivery.Peer"/> skips), else Peer. Asked on every pass.
    /// </param>
    public HostRoutingController(NodeContext node, INodeNetworks networks, AgentLoops loops, Func<PodDelivery> delivery)
        : base(networks, loops, () => networks.Current.Any(n => n.Network.HostRouting == HostRouting.Bpf) ? TimeSpan.FromSeconds(1) : TimeSpan.FromSeconds(30))
    {
        _node = node;
        _delivery = delivery;
    }

    public override string Name => "host routing";

    /// <summary>bpffs directory of the maps: under the agent's <c>bpfPinDir</c>.</summary>
    internal string PinDirectory => Path.Combine(_node.Config.BpfPinDir, "host_routing");

    /// <summary>The loaded host routing, for inspection; null when removed.</summary>
    internal BpfHostRouting? Loaded => _routing;

    /// <summary>The host stack routes meanwhile (host routing only speeds it up): any failure lets the agent start.</summary>
    protected override bool StartsDespite(Exception e) => e is not OperationCanceledException;

    /// <summary>
    /// One pass in the calling thread's network namespace. Throws <see cref="NetworkRefusedException"/> when the
    /// underlay is missing, having attached nothing.
    /// </summary>
    internal override void Pass()
    {
        lock (_pass)
        {
            PassLocked();
        }
    }

    /// <summary>
    /// A pod was just wired (loom-cni's endpoint-add): attach to its veth before the plugin returns, so its first
    /// packet already takes the eBPF path instead of waiting for the next scan. Failures are the loop's to report.
    /// </summary>
    public void PodAdded()
    {
        try
        {
            Pass();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Poke();
        }
    }

    private void PassLocked()
    {
        var networks = Networks.Current.Where(n => n.Network.HostRouting == HostRouting.Bpf).ToList();
        CountPass();
        if (networks.Count == 0)
        {
            Remove();
            (Summary, Refused) = ("no network with hostRouting: bpf", null);
            return;
        }

        using var nl = Netlink.Open();
        if (nl.LinkByName(_node.Config.Iface) is not { } underlay)
        {
            Refused = string.Join("; ", networks.Select(n =>
                $"network {n.Name}: hostRouting: bpf: the underlay device {_node.Config.Iface} does not exist on this node (\"iface\" in the agent config)"));
            Summary = "not attached";
            throw new NetworkRefusedException(Refused);
        }

        var aliases = networks.Select(n => CniNames.RoutedVethAlias(n.Name)).ToHashSet(StringComparer.Ordinal);
        var pods = nl.LinkList().Where(l => l.Alias is { } a && aliases.Contains(a)).Select(l => l.Index).ToHashSet();
        var routing = Routing();
        foreach (var (ifindex, role) in routing.AttachedInterfaces())
        {
            if (role == HostRoutingRole.Pod ? !pods.Contains(ifindex) : ifindex != underlay.Index)
            {
                routing.Detach(ifindex);
            }
        }

        foreach (var pod in pods)
        {
            routing.AttachPod(pod);
        }

        routing.AttachUnderlay(underlay.Index);
        Summary = $"{string.Join(", ", networks.Select(n => n.Name))}: {pods.Count} pod veths and {_node.Config.Iface}, {routing.Options.PodDelivery} delivery";
        Refused = null;
    }

    /// <summary>The programs detached everywhere and the pins removed: this run's or a previous one's.</summary>
    internal void Remove()
    {
        if (_routing is null && !Directory.Exists(PinDirectory))
        {
            return;
        }

        var routing = _routing ?? new BpfHostRouting(new HostRoutingOptions { PinDirectory = PinDirectory });
        routing.Remove();
        routing.Dispose();
        _routing = null;
        Datapath.Flows.FlowEventMaps.RemoveIfUnused(_node.Config.BpfPinDir); // the last object gone: the events pins too
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _routing?.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <summary>The loaded object, reloaded (its config rewritten, filters replaced) when the delivery changed.</summary>
    private BpfHostRouting Routing()
    {
        var delivery = _delivery();
        if (_routing?.Options.PodDelivery != delivery)
        {
            _routing?.Dispose();
            _routing = new BpfHostRouting(new HostRoutingOptions
            {
                PinDirectory = PinDirectory,
                PodDelivery = delivery,
                EventsDirectory = Datapath.Flows.FlowEventMaps.DirectoryFor(_node.Config.BpfPinDir),
            });
        }

        return _routing;
    }
}
