using Loom.Agent.Networks;
using Loom.Core.Model;
using Loom.Core.Networks;

namespace Loom.Agent.Masq;

/// <summary>
/// IP forwarding and masquerade for every network of the node: the LOOM-POSTRTG / LOOM-FWD rules (flannel's masquerade
/// and forward accept, <see cref="NodeMasq"/>) and eBPF masquerade on the underlay (<see cref="NodeBpfMasq"/>). Synced
/// when the networks change and every minute, so rules flushed by hand or by another tool come back (flannel re-checks
/// its own too). A network refused (e.g. BPF masquerade without an underlay) is reported in <see cref="Describe"/> and
/// retried; the other networks are programmed regardless.
/// </summary>
internal sealed class MasqueradeController : NetworkFollower
{
    private readonly NodeContext _node;

    public MasqueradeController(NodeContext node, INodeNetworks networks, AgentLoops loops)
        : base(networks, loops, TimeSpan.FromMinutes(1))
    {
        _node = node;
        Bpf = new NodeBpfMasq(node);
    }

    public override string Name => "masquerade";

    /// <summary>The BPF half; its pins live under the agent's <c>bpfPinDir</c>.</summary>
    internal NodeBpfMasq Bpf { get; }

    /// <summary>The node routes without a refused network's masquerade: the agent starts, the loop retries and reports it.</summary>
    protected override bool StartsDespite(Exception e) => e is NetworkRefusedException;

    /// <summary>
    /// One pass in the calling thread's network namespace: forwarding on, the iptables rules (one atomic
    /// iptables-restore), then BPF. Throws <see cref="NetworkRefusedException"/> naming each network refused, after
    /// programming all the others.
    /// </summary>
    internal override void Pass()
    {
        Linux.Sysctl.Set("net.ipv4.ip_forward", "1");
        var networks = Networks.Current;
        NodeMasq.Sync(networks, _node.IpMasq);
        var refused = Bpf.Sync(networks);
        CountPass();
        Summary = SummaryOf(networks);
        Refused = refused.Count > 0 ? string.Join("; ", refused) : null;
        if (refused.Count > 0)
        {
            throw new NetworkRefusedException(refused);
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Bpf.Dispose();
        }

        base.Dispose(disposing);
    }

    private string SummaryOf(IReadOnlyList<NetworkOnNode> networks) => networks.Count == 0
        ? "no network"
        : string.Join(", ", networks.Select(n => n.Network.Masquerade switch
        {
            Masquerade.Iptables when _node.IpMasq => $"{n.Name}: iptables (pod traffic leaving {n.NoMasqueradeCidr} masqueraded)",
            Masquerade.Iptables => $"{n.Name}: no masquerade (ipMasq off)",
            Masquerade.Bpf when Bpf.Network == n.Name => $"{n.Name}: BPF on {_node.Config.Iface}",
            Masquerade.Bpf => $"{n.Name}: BPF, not attached",
            _ => $"{n.Name}: no masquerade",
        }));
}
