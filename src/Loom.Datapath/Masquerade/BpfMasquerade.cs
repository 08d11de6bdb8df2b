using System.Buffers.Binary;
using System.Net;
using Loom.Datapath.Tc;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Masquerade;

/// <summary>
/// eBPF masquerade (bpf/masq.o), as Cilium's BPF masquerading: on the underlay device, tc egress source-NATs pods'
/// traffic leaving the cluster network to the node IP (TCP, UDP, ICMP echo) and tc ingress gives replies their pod
/// address back, with the NAT table in LRU hash maps and no iptables rule. The configuration (node IP, pod pool,
/// excluded destinations, port range) is written to the maps at load, replacing what a previous run left. Every call
/// acts in the calling thread's network namespace (the node's).
/// </summary>
public sealed class BpfMasquerade : IDisposable
{
    private readonly PinnedTcObject _obj;
    private bool _configured;

    public BpfMasquerade(MasqueradeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        _obj = new PinnedTcObject(MasqueradeMaps.ObjectFile, options.ObjectDirectory, options.PinDirectory,
            MasqueradeMaps.Interfaces, options.TcPriority, options.TcHandle, options.EventsDirectory);
    }

    public MasqueradeOptions Options { get; }

    /// <summary>The loaded and configured object, for inspection.</summary>
    public BpfObject Loaded => Configured();

    /// <summary>
    /// masq_denat on the underlay's ingress, then masq_snat on its egress (replies are handled before the first packet
    /// goes out). All or nothing; idempotent.
    /// </summary>
    public void Attach(int underlayIfindex)
    {
        Configured();
        _obj.Attach(underlayIfindex, 1,
            (MasqueradeMaps.DenatProgram, TcDirection.Ingress),
            (MasqueradeMaps.SnatProgram, TcDirection.Egress));
    }

    /// <summary>Removes both programs from the device (if it still exists) and forgets it; the NAT table stays.</summary>
    public void Detach(int ifindex) => _obj.Detach(ifindex);

    public IReadOnlyList<int> AttachedInterfaces() => _obj.Interfaces().Keys.Order().ToArray();

    /// <summary>The ids of the programs on a device's (ingress, egress), or null where none is.</summary>
    public (uint? Ingress, uint? Egress) AttachedPrograms(int ifindex) =>
        (_obj.AttachedProgram(ifindex, TcDirection.Ingress), _obj.AttachedProgram(ifindex, TcDirection.Egress));

    public ulong Counter(MasqueradeMaps.Stat stat) => _obj.SumCounters(MasqueradeMaps.Stats, MasqueradeMaps.StatCount)[(int)stat];

    /// <summary>The masqueraded flows in the NAT table now.</summary>
    public IReadOnlyList<MasqueradeEntry> Entries() =>
        Configured().Map<MasqTuple, MasqSnatValue>(MasqueradeMaps.Snat).Entries()
            .Select(e => new MasqueradeEntry(
                e.Key.ProtocolType,
                new IPEndPoint(e.Key.Source, LbMaps.PortFromNetwork(e.Key.SourcePort)),
                new IPEndPoint(e.Key.Destination, LbMaps.PortFromNetwork(e.Key.DestinationPort)),
                LbMaps.PortFromNetwork(e.Value.NatPort)))
            .ToArray();

    /// <summary>Detaches from every device it was attached to and deletes the maps' pins: nothing of it stays.</summary>
    public void Remove()
    {
        _obj.Remove();
        _configured = false;
    }

    /// <summary>
    /// <see cref="Remove"/> for what a previous run pinned under <paramref name="pinDirectory"/> (at the default tc
    /// slot), with no configuration at hand: a node whose last BPF-masquerading network went while its agent was down.
    /// Nothing pinned: nothing is loaded.
    /// </summary>
    public static void RemovePinned(string pinDirectory, string? objectDirectory = null)
    {
        if (!Directory.Exists(pinDirectory))
        {
            return;
        }

        using var obj = new PinnedTcObject(MasqueradeMaps.ObjectFile, objectDirectory, pinDirectory,
            MasqueradeMaps.Interfaces, MasqueradeOptions.DefaultTcPriority, MasqueradeOptions.DefaultTcHandle);
        obj.Remove();
    }

    /// <summary>Closes this process's descriptors; filters, pins and the NAT table stay (a restart adopts them).</summary>
    public void Dispose()
    {
        _obj.Dispose();
        _configured = false;
    }

    private BpfObject Configured()
    {
        var obj = _obj.Loaded;
        if (_configured)
        {
            return obj;
        }

        // Exclusions first: with the old config still in place a packet is at worst not masqueraded for a moment.
        var nonmasq = obj.Map<MasqLpmKey, uint>(MasqueradeMaps.NonMasquerade);
        var want = Options.NonMasqueradeCidrs.Append(Options.PodCidr).Select(Key).ToHashSet();
        foreach (var key in want)
        {
            nonmasq.Update(key, 1);
        }

        foreach (var stale in nonmasq.Keys().Where(k => !want.Contains(k)))
        {
            nonmasq.Delete(stale);
        }

        var prefix = Options.PodCidr.PrefixLength;
        var mask = prefix == 0 ? 0u : uint.MaxValue << (32 - prefix);
        obj.Map<uint, MasqConfig>(MasqueradeMaps.Config).Update(0, new MasqConfig
        {
            NodeIp = LbMaps.ToNetwork(Options.NodeIp),
            PodNet = LbMaps.ToNetwork(Options.PodCidr.BaseAddress),
            PodMask = BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(mask) : mask,
            PortMin = (ushort)Options.PortMin,
            PortMax = (ushort)Options.PortMax,
        });
        _configured = true;
        return obj;
    }

    private static MasqLpmKey Key(IPNetwork cidr) => new((uint)cidr.PrefixLength, LbMaps.ToNetwork(cidr.BaseAddress));
}
