using Loom.Datapath.Tc;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Routing;

/// <summary>
/// eBPF host routing (bpf/host_routing.o), as Cilium's: tc programs on the pods' host-side veths and the underlay forward
/// pod traffic with bpf_redirect_peer (to a local pod) and bpf_redirect_neigh (out of the FIB's device), so it skips the
/// node's routing and netfilter. The FIB still decides where a packet goes: the routes (per-pod host routes, routes to
/// peers' pod blocks) stay the agent's. Every call acts in the calling thread's network namespace (the node's).
/// </summary>
public sealed class BpfHostRouting : IDisposable
{
    private readonly PinnedTcObject _obj;
    private bool _configured;

    public BpfHostRouting(HostRoutingOptions? options = null)
    {
        Options = options ?? new HostRoutingOptions();
        _obj = new PinnedTcObject(HostRoutingMaps.ObjectFile, Options.ObjectDirectory, Options.PinDirectory,
            HostRoutingMaps.Interfaces, Options.TcPriority, Options.TcHandle, Options.EventsDirectory);
    }

    public HostRoutingOptions Options { get; }

    /// <summary>The loaded object (maps from the pins), for inspection.</summary>
    public BpfObject Loaded => Configured();

    /// <summary>hr_from_pod on a pod's host-side veth (ingress), which also becomes a bpf_redirect_peer target. Idempotent.</summary>
    public void AttachPod(int ifindex)
    {
        Configured();
        _obj.Attach(ifindex, (uint)HostRoutingRole.Pod, (HostRoutingMaps.FromPod, TcDirection.Ingress));
    }

    /// <summary>hr_from_underlay on the underlay device (ingress): traffic for local pods goes straight into them. Idempotent.</summary>
    public void AttachUnderlay(int ifindex)
    {
        Configured();
        _obj.Attach(ifindex, (uint)HostRoutingRole.Underlay, (HostRoutingMaps.FromUnderlay, TcDirection.Ingress));
    }

    /// <summary>Removes the program from a device (if it still exists) and forgets it.</summary>
    public void Detach(int ifindex) => _obj.Detach(ifindex);

    /// <summary>The devices the programs are attached to (by this or a previous run).</summary>
    public IReadOnlyDictionary<int, HostRoutingRole> AttachedInterfaces() =>
        _obj.Interfaces().ToDictionary(e => e.Key, e => (HostRoutingRole)e.Value);

    /// <summary>The id of the host routing program on a device's ingress, or null.</summary>
    public uint? AttachedProgram(int ifindex) => _obj.AttachedProgram(ifindex, TcDirection.Ingress);

    public HostRoutingCounters Counters() => new(_obj.SumCounters(HostRoutingMaps.Stats, 2 * HostRoutingMaps.Reasons));

    /// <summary>Detaches from every device it was attached to, and deletes the maps' pins: nothing of it stays.</summary>
    public void Remove()
    {
        _obj.Remove();
        _configured = false;
    }

    /// <summary>Closes this process's descriptors; filters and pins stay (a restart adopts them).</summary>
    public void Dispose()
    {
        _obj.Dispose();
        _configured = false;
    }

    /// <summary>The loaded object with hr_config written from the options (replacing what a previous run left).</summary>
    private BpfObject Configured()
    {
        var obj = _obj.Loaded;
        if (!_configured)
        {
            var flags = Options.PodDelivery == PodDelivery.Egress ? HostRoutingMaps.FlagEgressDelivery : 0;
            obj.Map<uint, uint>(HostRoutingMaps.Config).Update(0, flags);
            _configured = true;
        }

        return obj;
    }
}
