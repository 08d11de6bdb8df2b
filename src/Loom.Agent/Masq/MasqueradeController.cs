using Loom.Agent.Networks;
using Loom.Core.Controllers;
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
internal sealed class MasqueradeController : IController, IDisposable
{
    private static readonly TimeSpan Every = TimeSpan.FromMinutes(1);
    private readonly NodeContext _node;
    private readonly INodeNetworks _networks;
    private readonly AgentLoops _loops;
    private readonly SemaphoreSlim _changed = new(0);
    private long _passes;
    private volatile string? _refused;
    private volatile string _summary = "not synced yet";

    public MasqueradeController(NodeContext node, INodeNetworks networks, AgentLoops loops)
    {
        _node = node;
        _networks = networks;
        _loops = loops;
        Bpf = new NodeBpfMasq(node);
        networks.Changed += OnChanged;
    }

    public string Name => "masquerade";

    /// <summary>The BPF half; its pins live under the agent's <c>bpfPinDir</c>.</summary>
    internal NodeBpfMasq Bpf { get; }

    public Task StartAsync(CancellationToken ct)
    {
        try
        {
            Pass();
        }
        catch (NetworkRefusedException e)
        {
            // The node routes without the refused network's masquerade: start, and let the loop retry and report it.
            _loops.Log($"{Name}: {e.Message}");
            _changed.Release();
        }

        return Task.CompletedTask;
    }

    public Task RunAsync(CancellationToken ct) => _loops.RunOnSignalAsync(_changed, _ =>
    {
        Pass();
        return Task.CompletedTask;
    }, Name, ct, Every);

    public ControllerStatus Describe()
    {
        var error = _loops.LastError(Name) ?? _refused;
        return new(Name, error is null, _summary, Interlocked.Read(ref _passes), error);
    }

    /// <summary>
    /// One pass in the calling thread's network namespace: forwarding on, the iptables rules (one atomic
    /// iptables-restore), then BPF. Throws <see cref="NetworkRefusedException"/> naming each network refused, after
    /// programming all the others.
    /// </summary>
    internal void Pass()
    {
        Linux.Sysctl.Set("net.ipv4.ip_forward", "1");
        var networks = _networks.Current;
        NodeMasq.Sync(networks, _node.IpMasq);
        var refused = Bpf.Sync(networks);
        Interlocked.Increment(ref _passes);
        _summary = Summary(networks);
        _refused = refused.Count > 0 ? string.Join("; ", refused) : null;
        if (refused.Count > 0)
        {
            throw new NetworkRefusedException(refused);
        }
    }

    private void OnChanged() => _changed.Release();

    public void Dispose()
    {
        _networks.Changed -= OnChanged;
        Bpf.Dispose();
        _changed.Dispose();
    }

    private string Summary(IReadOnlyList<NetworkOnNode> networks) => networks.Count == 0
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
