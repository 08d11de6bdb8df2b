using Loom.Linux.Bpf;

namespace Loom.Datapath.Services.Ebpf;

public sealed partial class EbpfServiceBackend
{
    /// <summary>
    /// Puts the tc programs on a pod's host-side veth (in the calling thread's network namespace): lb4_from_pod on
    /// ingress (traffic from the pod), lb4_to_pod on egress (traffic to the pod). Idempotent; replaces a previous run's
    /// programs atomically.
    /// </summary>
    public void Attach(int ifindex)
    {
        var obj = EnsureLoaded();
        var from = obj.Program(LbMaps.FromPod);
        var to = obj.Program(LbMaps.ToPod);
        Remember(obj, ifindex, LbMaps.InterfacePod); // first: a full map leaves no unrecorded filters behind
        if (BpfTc.Query(ifindex, TcDirection.Egress, _options.TcPriority, _options.TcHandle) != to.Id)
        {
            to.AttachTc(ifindex, TcDirection.Egress, _options.TcPriority, _options.TcHandle);
        }

        if (BpfTc.Query(ifindex, TcDirection.Ingress, _options.TcPriority, _options.TcHandle) != from.Id)
        {
            from.AttachTc(ifindex, TcDirection.Ingress, _options.TcPriority, _options.TcHandle);
        }

        _attached.Add(ifindex);
    }

    /// <summary>
    /// Forgets lb4_ifaces entries whose interface no longer exists in the calling thread's namespace (a deleted pod's
    /// veth takes its filters with it, but not its entry): one link dump. Runs on every full sync and when the map is
    /// full, so pod churn over a node's life never fills it. Returns how many entries went.
    /// </summary>
    public int PruneInterfaces()
    {
        var map = EnsureLoaded().Map<uint, uint>(LbMaps.Interfaces);
        HashSet<int> present;
        using (var nl = Loom.Linux.Netlink.Open())
        {
            present = [.. nl.LinkList().Select(l => l.Index)];
        }

        var pruned = 0;
        foreach (var key in map.Keys())
        {
            if (!present.Contains((int)key) && map.Delete(key))
            {
                _attached.Remove((int)key);
                pruned++;
            }
        }

        return pruned;
    }

    /// <summary>Records an attachment in lb4_ifaces; when the map is full, prunes vanished interfaces and tries again.</summary>
    private void Remember(BpfObject obj, int ifindex, uint kind)
    {
        var map = obj.Map<uint, uint>(LbMaps.Interfaces);
        try
        {
            map.Update((uint)ifindex, kind);
        }
        catch (BpfException e) when (e.IsMapFull)
        {
            // Pruned here, not in the filter: an exception thrown by a filter is swallowed, and its cause with it.
            if (PruneInterfaces() == 0)
            {
                throw InterfacesFull(map, e);
            }

            try
            {
                map.Update((uint)ifindex, kind);
            }
            catch (BpfException again) when (again.IsMapFull)
            {
                throw InterfacesFull(map, again);
            }
        }
    }

    private static BpfException InterfacesFull(BpfMap<uint, uint> map, BpfException e) =>
        new($"ebpf: {LbMaps.Interfaces} is full ({map.Map.MaxEntries} interfaces, all present): raise bpfMapSizes.interfaces", e);

    /// <summary>
    /// Puts the node-port programs on <see cref="EbpfServiceOptions.NodePortInterface"/> (in the calling thread's
    /// namespace): lb4_from_net on ingress, lb4_to_net on egress, at a priority of their own before masquerade's, so
    /// other filters there (policy, masquerade, host routing) keep theirs. Idempotent. Nothing without the option.
    /// </summary>
    public void AttachUnderlay()
    {
        if (_options.NodePortInterface is not { } name)
        {
            return;
        }

        var obj = EnsureLoaded();
        int ifindex;
        using (var nl = Loom.Linux.Netlink.Open())
        {
            ifindex = nl.LinkByName(name)?.Index ?? throw new InvalidOperationException($"ebpf: node-port interface {name} does not exist");
        }

        var from = obj.Program(LbMaps.FromNet);
        var to = obj.Program(LbMaps.ToNet);
        Remember(obj, ifindex, LbMaps.InterfaceUnderlay);
        uint prio = _options.NodePortTcPriority, handle = _options.NodePortTcHandle;
        if (BpfTc.Query(ifindex, TcDirection.Egress, prio, handle) != to.Id)
        {
            to.AttachTc(ifindex, TcDirection.Egress, prio, handle);
        }

        if (BpfTc.Query(ifindex, TcDirection.Ingress, prio, handle) != from.Id)
        {
            from.AttachTc(ifindex, TcDirection.Ingress, prio, handle);
        }
    }

    /// <summary>Removes the tc programs from <paramref name="ifindex"/> (if the veth still exists); forgets it either way.</summary>
    public void Detach(int ifindex)
    {
        var obj = EnsureLoaded();
        BpfTc.Detach(ifindex, TcDirection.Ingress, _options.TcPriority, _options.TcHandle);
        BpfTc.Detach(ifindex, TcDirection.Egress, _options.TcPriority, _options.TcHandle);
        obj.Map<uint, uint>(LbMaps.Interfaces).Delete((uint)ifindex);
        _attached.Remove(ifindex);
    }

    /// <summary>Interfaces the tc programs were attached to (by this or a previous run).</summary>
    public IReadOnlyList<int> AttachedInterfaces() => AttachedWith(LbMaps.InterfacePod);

    /// <summary>The underlay device the node-port programs were attached to (by this or a previous run), if any.</summary>
    public int? UnderlayInterface => AttachedWith(LbMaps.InterfaceUnderlay) is [var i, ..] ? i : null;

    private int[] AttachedWith(uint kind) =>
        [.. EnsureLoaded().Map<uint, uint>(LbMaps.Interfaces).Entries().Where(e => e.Value == kind).Select(e => (int)e.Key).Order()];

    /// <summary>Attaches the new program, then detaches the one a previous run pinned (both are equivalent meanwhile).</summary>
    private void AttachCgroup(BpfProgram prog, string cgroup, string name)
    {
        var type = AttachTypeOf(name);
        prog.AttachCgroup(cgroup, type);
        var pin = Path.Combine(_options.PinDirectory, "prog_" + name);
        if (File.Exists(pin))
        {
            using var old = BpfProgram.OpenPinned(pin);
            if (old.Id != prog.Id)
            {
                old.DetachCgroup(cgroup, type);
            }

            BpfFs.Unpin(pin);
        }

        prog.Pin(pin);
    }

    private void DetachPinned(string cgroup, string name)
    {
        var pin = Path.Combine(_options.PinDirectory, "prog_" + name);
        if (File.Exists(pin))
        {
            using var old = BpfProgram.OpenPinned(pin);
            old.DetachCgroup(cgroup, AttachTypeOf(name));
        }
    }

    private static BpfCgroupAttachType AttachTypeOf(string name) => name switch
    {
        LbMaps.Connect4 => BpfCgroupAttachType.Inet4Connect,
        LbMaps.Sendmsg4 => BpfCgroupAttachType.Udp4Sendmsg,
        LbMaps.Recvmsg4 => BpfCgroupAttachType.Udp4Recvmsg,
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
    };
}
