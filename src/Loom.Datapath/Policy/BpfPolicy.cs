using System.Net;
using Loom.Core.Policy;
using Loom.Datapath.Tc;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Policy;

/// <summary>
/// eBPF network policy (bpf/policy.o), as Cilium's: tc programs on both hooks of the pods' host veths judge every IPv4
/// packet by the peer's identity (pol_ipcache) against the endpoint's allow entries (pol_rules, pol_cidr), statefully
/// (pol_ct: replies and established flows pass). The agent owns the maps' content: endpoints, identities, rules. Maps
/// are pinned; a restart adopts them and diffs against what they hold. Attaching acts in the calling thread's network
/// namespace (the node's: NetNs.Run). Not thread-safe.
/// </summary>
public sealed partial class BpfPolicy : IDisposable
{
    private readonly PinnedTcObject _obj;

    public BpfPolicy(PolicyDatapathOptions? options = null)
    {
        Options = options ?? new PolicyDatapathOptions();
        _obj = new PinnedTcObject(PolicyMaps.ObjectFile, Options.ObjectDirectory, Options.PinDirectory,
            PolicyMaps.Interfaces, Options.TcPriority, Options.TcHandle, Options.EventsDirectory);
    }

    public PolicyDatapathOptions Options { get; }

    /// <summary>The loaded object (maps from the pins), for inspection.</summary>
    public BpfObject Loaded => _obj.Loaded;

    /// <summary>pol_from_pod on the ingress and pol_to_pod on the egress of a pod's host veth. Idempotent.</summary>
    public void AttachEndpoint(int ifindex) =>
        _obj.Attach(ifindex, (uint)PolicyInterfaceRole.Endpoint, (PolicyMaps.FromPod, TcDirection.Ingress), (PolicyMaps.ToPod, TcDirection.Egress));

    /// <summary>Removes the programs from a pod's host veth (if it still exists) and forgets it; its endpoint entry stays.</summary>
    public void DetachEndpoint(int ifindex) => _obj.Detach(ifindex);

    /// <summary>
    /// pol_to_node on the egress of the tunnel device (<paramref name="overlay"/>) or the underlay: deferred verdicts of
    /// remote service backends; pol_from_node on its ingress. Both emit the device's flow-event traces.
    /// </summary>
    public void AttachNodeEgress(int ifindex, bool overlay = false) =>
        _obj.Attach(ifindex, (uint)(overlay ? PolicyInterfaceRole.Overlay : PolicyInterfaceRole.Node),
            (PolicyMaps.ToNode, TcDirection.Egress), (PolicyMaps.FromNode, TcDirection.Ingress));

    /// <summary>Removes pol_to_node and pol_from_node from a device and forgets it.</summary>
    public void DetachNodeEgress(int ifindex) => _obj.Detach(ifindex);

    /// <summary>The devices the programs are attached to (by this or a previous run).</summary>
    public IReadOnlyDictionary<int, PolicyInterfaceRole> Interfaces() =>
        _obj.Interfaces().ToDictionary(e => e.Key, e => (PolicyInterfaceRole)e.Value);

    /// <summary>The id of the program at the policy's slot on a hook of a device, or null.</summary>
    public uint? AttachedProgram(int ifindex, TcDirection direction) => _obj.AttachedProgram(ifindex, direction);

    /// <summary>
    /// Makes the host veth <paramref name="ifindex"/> a managed endpoint: its id (the key of its rules; 1..65535), its own
    /// identity, and which directions are isolated. A direction not enforced passes everything (and records it). With
    /// <paramref name="address"/> (the pod's IPv4 address) every packet from the pod with another source is dropped.
    /// </summary>
    public void SetEndpoint(int ifindex, uint epId, uint identity, bool enforceIngress, bool enforceEgress, IPAddress? address = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ifindex);
        PolicyKeys.CheckEndpointId(epId);
        var flags = (enforceIngress ? PolicyMaps.EnforceIngress : 0) | (enforceEgress ? PolicyMaps.EnforceEgress : 0);
        var ip = address is null ? 0u : LbMaps.ToNetwork(address); // refuses IPv6
        _obj.Loaded.Map<uint, PolEndpoint>(PolicyMaps.Endpoints).Update((uint)ifindex, new PolEndpoint(epId, identity, flags, ip));
    }

    /// <summary>Unmanages a host veth (its packets pass); false if it had no entry.</summary>
    public bool RemoveEndpoint(int ifindex) => _obj.Loaded.Map<uint, PolEndpoint>(PolicyMaps.Endpoints).Delete((uint)ifindex);

    /// <summary>The endpoint entries: host veth ifindex -> (id, identity, enforcement flags).</summary>
    public IReadOnlyDictionary<int, PolEndpoint> Endpoints() =>
        _obj.Loaded.Map<uint, PolEndpoint>(PolicyMaps.Endpoints).Entries().ToDictionary(e => (int)e.Key, e => e.Value);

    /// <summary>
    /// Switches enforcement (off: every packet passes, nothing is tracked), whether the node itself may always reach its
    /// pods (Cilium's allow-localhost), and the service range kube-proxy translates (null: none; egress to it is judged
    /// after the DNAT).
    /// </summary>
    public void SetConfig(bool enabled, bool allowHost, IPNetwork? serviceCidr)
    {
        uint net = 0, mask = 0;
        if (serviceCidr is { } svc)
        {
            var key = PolicyKeys.Ipcache(svc);
            if (svc.PrefixLength == 0)
            {
                throw new ArgumentException("the service range cannot be 0.0.0.0/0", nameof(serviceCidr));
            }

            net = key.Address;
            var bytes = new byte[4];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes, uint.MaxValue << (32 - svc.PrefixLength));
            mask = LbMaps.ToNetwork(new IPAddress(bytes));
        }

        var flags = (enabled ? PolicyMaps.FlagEnabled : 0) | (allowHost ? PolicyMaps.FlagAllowHost : 0);
        var config = _obj.Loaded.Map<uint, PolConfig>(PolicyMaps.Config);
        config.Update(0, config.Lookup(0) with { Flags = flags, ServiceNet = net, ServiceMask = mask }); // keeps the tunnel ports
    }

    /// <summary>
    /// The node's VXLAN (UDP) ports, at most <see cref="PolConfig.TunnelPorts"/>: the underlay's flow events leave out
    /// the tunnels' outer packets (their flows are traced at the tunnel device). Empty: none.
    /// </summary>
    public void SetTunnelPorts(IReadOnlyCollection<int> ports)
    {
        ArgumentNullException.ThrowIfNull(ports);
        var distinct = ports.Distinct().ToList();
        if (distinct.Count > PolConfig.TunnelPorts)
        {
            throw new ArgumentException($"at most {PolConfig.TunnelPorts} tunnel ports, got {distinct.Count}: {string.Join(", ", distinct)}", nameof(ports));
        }

        if (distinct.Any(p => p is < 1 or > 65535))
        {
            throw new ArgumentOutOfRangeException(nameof(ports), $"tunnel ports must be 1-65535, got {string.Join(", ", distinct)}");
        }

        var n = distinct.Select(LbMaps.PortToNetwork).Concat(Enumerable.Repeat((ushort)0, PolConfig.TunnelPorts)).ToArray();
        var config = _obj.Loaded.Map<uint, PolConfig>(PolicyMaps.Config);
        config.Update(0, config.Lookup(0) with { TunnelPort0 = n[0], TunnelPort1 = n[1], TunnelPort2 = n[2], TunnelPort3 = n[3] });
    }

    /// <summary>pol_stats summed over the CPUs and both directions, by reason.</summary>
    public IReadOnlyDictionary<PolicyReason, ulong> Counters() =>
        CountersByDirection().GroupBy(c => c.Key.Reason).ToDictionary(g => g.Key, g => g.Aggregate(0UL, (sum, c) => sum + c.Value));

    /// <summary>pol_stats summed over the CPUs, by reason and the endpoint's direction (a deferred verdict: its sender's egress).</summary>
    public IReadOnlyDictionary<(PolicyReason Reason, PolicyDirection Direction), ulong> CountersByDirection()
    {
        var sums = _obj.SumCounters(PolicyMaps.Stats, 2 * PolicyMaps.Reasons);
        return Enum.GetValues<PolicyReason>()
            .SelectMany(r => new[] { PolicyDirection.Ingress, PolicyDirection.Egress }.Select(d => (r, d)))
            .ToDictionary(k => k, k => sums[(k.d == PolicyDirection.Egress ? PolicyMaps.Reasons : 0) + (int)k.r]);
    }

    /// <summary>Detaches from every device it was attached to and deletes the pins: nothing of it stays.</summary>
    public void Remove()
    {
        _obj.Remove();
        ForgetCaches();
    }

    /// <summary>Closes this process's descriptors; filters and pins stay (a restart adopts them).</summary>
    public void Dispose()
    {
        _obj.Dispose();
        ForgetCaches();
    }
}
