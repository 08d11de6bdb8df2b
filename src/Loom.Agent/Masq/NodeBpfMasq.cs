using Loom.Agent.Networks;
using Loom.Core.Model;
using Loom.Datapath.Masquerade;
using Loom.Linux;

namespace Loom.Agent.Masq;

/// <summary>
/// <c>masquerade: bpf</c>: bpf/masq.o on the underlay device, SNAT to the node's underlay IP for the network's pool,
/// except towards its no-masquerade CIDR and every other network's pool. masq.o takes one source pool, so one network
/// per node masquerades in BPF: the first by name; any other is refused, naming the one that holds it. No such network
/// left: programs detached and pins removed, also those a previous run left. Acts in the calling thread's namespace.
/// </summary>
internal sealed class NodeBpfMasq(NodeContext node) : IDisposable
{
    private BpfMasquerade? _masq;

    /// <summary>bpffs directory of the maps (masq.o is found as the eBPF service backend finds lb4.o).</summary>
    public string PinDirectory { get; } = Path.Combine(node.Config.BpfPinDir, "masq");

    /// <summary>The attached masquerade, for inspection; null when none is.</summary>
    internal BpfMasquerade? Attached => Network is null ? null : _masq;

    /// <summary>The network masqueraded in BPF now, or null.</summary>
    public string? Network { get; private set; }

    /// <summary>
    /// Attaches for the BPF network, or detaches and unpins without one. Returns the errors, each naming its network;
    /// empty when all is in place.
    /// </summary>
    public IReadOnlyList<string> Sync(IReadOnlyList<NetworkOnNode> networks)
    {
        var bpf = networks.Where(n => n.Network.Masquerade == Masquerade.Bpf).OrderBy(n => n.Name, StringComparer.Ordinal).ToList();
        var errors = bpf.Skip(1)
            .Select(n => $"network {n.Name}: masquerade: bpf: refused, network {bpf[0].Name} already masquerades in BPF on this node (bpf/masq.o takes one pod pool)")
            .ToList();
        if (bpf.Count == 0)
        {
            Remove();
            return errors;
        }

        var chosen = bpf[0];
        string? error;
        try
        {
            error = Attach(chosen, networks);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The kernel or bpffs refused (or masq.o is missing): the iptables networks stay programmed regardless.
            error = $"{e.GetType().Name}: {e.Message}";
        }

        if (error is not null)
        {
            Network = null;
            errors.Insert(0, $"network {chosen.Name}: masquerade: bpf: {error}");
        }

        return errors;
    }

    /// <summary>Detaches from every device and removes the pins (this run's or a previous one's).</summary>
    public void Remove()
    {
        if (_masq is not null)
        {
            _masq.Remove();
            _masq.Dispose();
            _masq = null;
            Datapath.Flows.FlowEventMaps.RemoveIfUnused(node.Config.BpfPinDir); // the last object gone: the events pins too
        }
        else if (Directory.Exists(PinDirectory))
        {
            BpfMasquerade.RemovePinned(PinDirectory);
            Datapath.Flows.FlowEventMaps.RemoveIfUnused(node.Config.BpfPinDir);
        }

        Network = null;
    }

    public void Dispose() => _masq?.Dispose();

    /// <summary>All or nothing on the underlay; returns why not, or null.</summary>
    private string? Attach(NetworkOnNode chosen, IReadOnlyList<NetworkOnNode> networks)
    {
        using var nl = Netlink.Open();
        if (nl.LinkByName(node.Config.Iface) is not { } underlay)
        {
            return $"the underlay device {node.Config.Iface} does not exist on this node (\"iface\" in the agent config)";
        }

        var want = new MasqueradeOptions
        {
            NodeIp = node.UnderlayIp,
            PodCidr = chosen.Network.PodCidr,
            NonMasqueradeCidrs = [chosen.NoMasqueradeCidr, .. networks.Where(n => n.Name != chosen.Name).Select(n => n.Network.PodCidr)],
            PinDirectory = PinDirectory,
            EventsDirectory = Datapath.Flows.FlowEventMaps.DirectoryFor(node.Config.BpfPinDir),
        };
        if (_masq is null || !Same(_masq.Options, want))
        {
            try
            {
                want.Validate();
            }
            catch (ArgumentException e)
            {
                return e.Message;
            }

            // A new configuration is written to the pinned maps on first use; the NAT table is kept.
            _masq?.Dispose();
            _masq = new BpfMasquerade(want);
        }

        foreach (var stale in _masq.AttachedInterfaces().Where(i => i != underlay.Index))
        {
            _masq.Detach(stale);
        }

        _masq.Attach(underlay.Index);
        Network = chosen.Name;
        return null;
    }

    private static bool Same(MasqueradeOptions a, MasqueradeOptions b) =>
        a with { NonMasqueradeCidrs = [] } == b with { NonMasqueradeCidrs = [] } && a.NonMasqueradeCidrs.SequenceEqual(b.NonMasqueradeCidrs);
}
