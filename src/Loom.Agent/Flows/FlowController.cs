using System.Diagnostics;
using Loom.Agent.Policy;
using Loom.Agent.Services;
using Loom.Core.Controllers;
using Loom.Core.Flows;
using Loom.Linux;

namespace Loom.Agent.Flows;

/// <summary>
/// Hubble's observer on one node: reads the datapath's flow events on a thread of its own, names both sides from what
/// the policy and service controllers already hold (<see cref="FlowDirectory"/>), keeps the last flows in a
/// <see cref="FlowRing"/> for the socket's <c>flows</c> op and counts them into the flow metrics.
/// </summary>
internal sealed class FlowController(NodeContext node, AgentLoops loops, PolicyController policy, ServiceController? services,
    Func<IFlowEventSource> open, Action<bool, string> configure) : IController, IDisposable
{
    /// <summary>How old the names may grow when no policy pass changed them (Services and devices have no pass here).</summary>
    private static readonly TimeSpan DirectoryAge = TimeSpan.FromSeconds(1);

    private readonly FlowRing _ring = new(node.Config.FlowBufferSize);
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private IFlowEventSource? _source;
    private Thread? _thread;
    private CancellationTokenSource? _stop;
    private FlowDirectory _names = FlowDirectory.Empty;
    private long _namesVersion = -1;
    private long _namesBuilt;
    private long _events;
    private long _lost;
    private long _lostCounted;
    private volatile string? _error;

    public string Name => "flows";

    public bool Enabled => node.Config.FlowEvents;

    /// <summary>Checks the agent's flow options; the message names the bad one (the agent does not start with it).</summary>
    public static string? Validate(AgentConfig config) =>
        config.FlowAggregation is not ("none" or "medium") ? $"flowAggregation: \"{config.FlowAggregation}\" is not an aggregation level; use none or medium"
        : config.FlowBufferSize is < 1 or > 1_000_000 ? $"flowBufferSize: {config.FlowBufferSize} is out of range (1 to 1000000 flows)"
        : null;

    public Task StartAsync(CancellationToken ct)
    {
        configure(Enabled, node.Config.FlowAggregation);
        if (!Enabled || _thread is not null)
        {
            return Task.CompletedTask;
        }

        _source = open();
        _stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        // A thread of its own: the ring buffer's poll blocks, and events must not wait behind the pool's work.
        _thread = new Thread(() => Read(_stop.Token)) { IsBackground = true, Name = "loom flows" };
        _thread.Start();
        loops.Log($"flows: events on ({node.Config.FlowAggregation} aggregation), keeping the last {_ring.Capacity}");
        return Task.CompletedTask;
    }

    public async Task RunAsync(CancellationToken ct)
    {
        if (_thread is null)
        {
            await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false);
            return;
        }

        await _stopped.Task.WaitAsync(ct).ConfigureAwait(false);
    }

    /// <summary>
    /// The flows a query asks for, and the events lost so far; null when flow events are off on this node. A number
    /// past the newest is a follower's from before this agent restarted: it gets everything kept since.
    /// </summary>
    public (List<Flow> Flows, long Lost)? Query(FlowQuery query) =>
        Enabled
            ? (_ring.Query(query.AfterSeq > _ring.LastSeq ? query with { AfterSeq = 0 } : query), Interlocked.Read(ref _lost))
            : null;

    public ControllerStatus Describe() => Enabled
        ? new ControllerStatus(Name, _thread is not null && _error is null,
            $"{Math.Min(_ring.LastSeq, _ring.Capacity)}/{_ring.Capacity} flows kept, {Interlocked.Read(ref _lost)} lost, {node.Config.FlowAggregation} aggregation",
            Interlocked.Read(ref _events), _error)
        : new ControllerStatus(Name, true, "flow events off", 0, null);

    /// <summary>Names and keeps one event (the event thread; tests call it directly).</summary>
    internal Flow Handle(FlowEvent e)
    {
        var flow = _ring.Add(FlowEnricher.Enrich(e, node.Name, WallTime(e.KtimeNs), Names()));
        Interlocked.Increment(ref _events);
        Count(flow);
        return flow;
    }

    private void Read(CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                try
                {
                    _source!.Poll(e => Handle(e), 250);
                    CountLost(_source.Lost);
                    _error = null;
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // One bad pass (a map read failing, a name lookup's bug) must not end the flow log: report and go on.
                    _error = AgentLoops.Describe(e);
                    AgentMetrics.LoopFailures.WithLabels("flows", e.GetType().Name).Inc();
                    loops.Log($"flows: reading events failed: {_error}");
                    ct.WaitHandle.WaitOne(TimeSpan.FromSeconds(1));
                }
            }
        }
        finally
        {
            _stopped.TrySetResult();
        }
    }

    private void CountLost(long lost)
    {
        Interlocked.Exchange(ref _lost, lost);
        if (lost > _lostCounted)
        {
            AgentMetrics.LostEvents.Inc(lost - _lostCounted);
            _lostCounted = lost;
        }
    }

    private void Count(Flow flow)
    {
        AgentMetrics.FlowsProcessed.WithLabels(flow.Type, flow.Verdict).Inc();
        var direction = flow.TrafficDirection ?? "unknown";
        if (flow.Type == "drop")
        {
            AgentMetrics.Drops.WithLabels(flow.DropReason ?? "", direction).Inc();
        }

        if (!node.Config.FlowMetricsPerPod)
        {
            return;
        }

        // The local pod: the sender on its egress, the receiver on its ingress.
        var pod = direction == "egress" ? flow.Source : flow.Destination;
        if (pod.Pod is not null && pod.Node == node.Name)
        {
            AgentMetrics.PodFlowsProcessed.WithLabels(pod.Namespace!, pod.Pod, flow.Type, flow.Verdict).Inc();
            if (flow.Type == "drop")
            {
                AgentMetrics.PodDrops.WithLabels(pod.Namespace!, pod.Pod, flow.DropReason ?? "", direction).Inc();
            }
        }
    }

    /// <summary>The names, rebuilt after a policy pass (endpoints, identities, nodes changed) or when a second old.</summary>
    private FlowDirectory Names()
    {
        var current = policy.Names;
        var age = Stopwatch.GetElapsedTime(_namesBuilt);
        if (current.Version != _namesVersion || age >= DirectoryAge)
        {
            var (endpoints, nodes) = policy.Objects();
            _names = new FlowDirectory(endpoints, current.Ipcache, current.Identities, nodes, services?.ServiceInfos() ?? [], Interfaces());
            _namesVersion = current.Version;
            _namesBuilt = Stopwatch.GetTimestamp();
        }

        return _names;
    }

    private static Dictionary<int, string> Interfaces()
    {
        using var nl = Netlink.Open();
        return nl.LinkList().ToDictionary(l => l.Index, l => l.Name);
    }

    /// <summary>bpf_ktime_get_ns is CLOCK_MONOTONIC, as the runtime's timestamp on Linux: the event's age, back from now.</summary>
    private static DateTimeOffset WallTime(ulong ktimeNs)
    {
        var monotonicNs = (long)(Stopwatch.GetTimestamp() * (1_000_000_000.0 / Stopwatch.Frequency));
        return FlowEnricher.WallTime(ktimeNs, monotonicNs, DateTimeOffset.UtcNow);
    }

    public void Dispose()
    {
        _stop?.Cancel();
        _thread?.Join(TimeSpan.FromSeconds(2));
        _source?.Dispose();
        _stop?.Dispose();
    }
}
