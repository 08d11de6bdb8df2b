using Loom.Agent.Networks;
using Loom.Core.Cni;
using Loom.Core.Controllers;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Datapath.Routing;
using Loom.Linux;

namespace Loom.Agent.Routing;

/// <summary>
/// eBPF host routing (bpf/host_routing.o) for the networks with <c>hostRouting: bpf</c>: hr_from_pod on the host veth
/// of each of their pods on this node (found by the alias loom-cni gives routed veths,
/// <see cref="CniNames.RoutedVethAlias"/>) and hr_from_underlay on the underlay device. Loom.Linux has no link event
/// subscription, so new and deleted pods are found by a link dump every second, and at once when the networks change.
/// A veth gone: detached; no such network left: programs and pins removed (also those a previous run left).
/// </summary>
internal sealed class HostRoutingController : IController, IDisposable
{
    private static readonly TimeSpan Every = TimeSpan.FromSeconds(1);
    private readonly NodeContext _node;
    private readonly INodeNetworks _networks;
    private readonly AgentLoops _loops;
    private readonly Func<PodDelivery> _delivery;
    private readonly SemaphoreSlim _changed = new(0);
    private readonly Lock _pass = new();
    private BpfHostRouting? _routing;
    private long _passes;
    private volatile string? _refused;
    private volatile string _summary = "not synced yet";

    /// <param name="delivery">
    /// How packets reach local pods: <see cref="PodDelivery.Egress"/> while the eBPF service backend has its reverse
    /// NAT on the pods' veths' egress (which <see cref="PodDelivery.Peer"/> skips), else Peer. Asked on every pass.
    /// </param>
    public HostRoutingController(NodeContext node, INodeNetworks networks, AgentLoops loops, Func<PodDelivery> delivery)
    {
        _node = node;
        _networks = networks;
        _loops = loops;
        _delivery = delivery;
        networks.Changed += OnChanged;
    }

    public string Name => "host routing";

    /// <summary>bpffs directory of the maps: under the agent's <c>bpfPinDir</c>.</summary>
    internal string PinDirectory => Path.Combine(_node.Config.BpfPinDir, "host_routing");

    /// <summary>The loaded host routing, for inspection; null when removed.</summary>
    internal BpfHostRouting? Loaded => _routing;

    public Task StartAsync(CancellationToken ct)
    {
        try
        {
            Pass();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The host stack routes meanwhile (host routing only speeds it up): start, and let the loop retry and report it.
            _refused ??= $"{e.GetType().Name}: {e.Message}";
            _loops.Log($"{Name}: {AgentLoops.Describe(e)}");
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
    /// One pass in the calling thread's network namespace. Throws <see cref="NetworkRefusedException"/> when the
    /// underlay is missing, having attached nothing.
    /// </summary>
    internal void Pass()
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
            _changed.Release();
        }
    }

    private void PassLocked()
    {
        var networks = _networks.Current.Where(n => n.Network.HostRouting == HostRouting.Bpf).ToList();
        Interlocked.Increment(ref _passes);
        if (networks.Count == 0)
        {
            Remove();
            (_summary, _refused) = ("no network with hostRouting: bpf", null);
            return;
        }

        using var nl = Netlink.Open();
        if (nl.LinkByName(_node.Config.Iface) is not { } underlay)
        {
            _refused = string.Join("; ", networks.Select(n =>
                $"network {n.Name}: hostRouting: bpf: the underlay device {_node.Config.Iface} does not exist on this node (\"iface\" in the agent config)"));
            _summary = "not attached";
            throw new NetworkRefusedException(_refused);
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
        _summary = $"{string.Join(", ", networks.Select(n => n.Name))}: {pods.Count} pod veths and {_node.Config.Iface}, {routing.Options.PodDelivery} delivery";
        _refused = null;
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
    }

    private void OnChanged() => _changed.Release();

    public void Dispose()
    {
        _networks.Changed -= OnChanged;
        _routing?.Dispose();
        _changed.Dispose();
    }

    /// <summary>The loaded object, reloaded (its config rewritten, filters replaced) when the delivery changed.</summary>
    private BpfHostRouting Routing()
    {
        var delivery = _delivery();
        if (_routing?.Options.PodDelivery != delivery)
        {
            _routing?.Dispose();
            _routing = new BpfHostRouting(new HostRoutingOptions { PinDirectory = PinDirectory, PodDelivery = delivery });
        }

        return _routing;
    }
}
