using System.Diagnostics;
using Loom.Agent.Policy;
using Loom.Agent.Services;
using Loom.Core.Controllers;
using Loom.Core.Flows;
using Loom.Core.Model;
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

    /// <summary>The most flows one answer carries (a 65535-flow buffer as JSON is tens of MB); the rest on the next ask.</summary>
    public const int MaxAnswer = 20_000;

    /// <summary>Hubble's largest buffer: every kept flow is a few KB of strings.</summary>
    public const int MaxBufferSize = 65_535;

    private readonly FlowRing _ring = new(node.Config.FlowBufferSize);
    private IFlowEventSource? _source;
    private Thread? _thread;
    private CancellationTokenSource? _stop;
    private FlowDirectory _names = FlowDirectory.Empty;
    private long _namesVersion = -1;
    private long _namesBuilt;
    private long _events;
    private long _lost;
    private long _lostBase;
    private volatile string? _error;
    private volatile bool _readerEnded;
    private bool _namesFailing;

    /// <summary>The per-pod series written, by pod: removed when the pod's endpoint goes (else a series per pod ever seen).</summary>
    private readonly Dictionary<(string Namespace, string Pod), HashSet<(bool Drop, string A, string B)>> _podSeries = [];

    /// <summary>This agent run's flow numbering: a follower that sees it change starts over (the numbers began anew).</summary>
    public string Instance { get; } = Guid.NewGuid().ToString("N")[..16];

    public string Name => "flows";

    public bool Enabled => node.Config.FlowEvents;

    /// <summary>Checks the agent's flow options; the message names the bad one (the agent does not start with it).</summary>
    public static string? Validate(AgentConfig config) =>
        config.FlowAggregation is not ("none" or "medium") ? $"flowAggregation: \"{config.FlowAggregation}\" is not an aggregation level; use none or medium"
        : config.FlowBufferSize is < 1 or > MaxBufferSize ? $"flowBufferSize: {config.FlowBufferSize} is out of range (1 to {MaxBufferSize} flows)"
        : null;

    /// <summary>
    /// Never fails: the ring is opened on the reader thread, with backoff, so a datapath problem shows in the status
    /// instead of keeping the node from becoming ready. Off, the programs are told so only if the maps are there (no
    /// ring is created for nothing).
    /// </summary>
    public Task StartAsync(CancellationToken ct)
    {
        if (!Enabled)
        {
            try
            {
                configure(false, node.Config.FlowAggregation);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                _error = $"turning flow events off: {AgentLoops.Describe(e)}";
                loops.Log($"flows: {_error}");
            }

            return Task.CompletedTask;
        }

        if (_thread is not null)
        {
            return Task.CompletedTask;
        }

        _stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        // A thread of its own: the ring buffer's poll blocks, and events must not wait behind the pool's work.
        _thread = new Thread(() => Read(_stop.Token)) { IsBackground = true, Name = "loom flows" };
        _thread.Start();
        return Task.CompletedTask;
    }

    public Task RunAsync(CancellationToken ct) => Task.Delay(Timeout.Infinite, ct);

    /// <summary>
    /// The flows a query asks for (at most <see cref="MaxAnswer"/>: a follower's oldest, else the newest), the events
    /// lost since this agent started, and whether it was cut; null when flow events are off on this node. A number past
    /// the newest is a follower's from before this agent restarted: it gets everything kept since.
    /// </summary>
    public FlowAnswer? Query(FlowQuery query)
    {
        if (!Enabled)
        {
            return null;
        }

        var flows = _ring.Query(query.AfterSeq > _ring.LastSeq ? query with { AfterSeq = 0 } : query);
        var capped = flows.Count > MaxAnswer;
        if (capped)
        {
            flows = query.AfterSeq > 0 ? flows[..MaxAnswer] : flows[^MaxAnswer..];
        }

        return new FlowAnswer(flows, Interlocked.Read(ref _lost), Instance, capped);
    }

    public ControllerStatus Describe() => Enabled
        ? new ControllerStatus(Name, _thread is not null && _source is not null && _error is null && !_readerEnded,
            $"{Math.Min(_ring.LastSeq, _ring.Capacity)}/{_ring.Capacity} flows kept, {Interlocked.Read(ref _lost)} lost, {node.Config.FlowAggregation} aggregation",
            Interlocked.Read(ref _events), _error)
        : new ControllerStatus(Name, _error is null, "flow events off", 0, _error);

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
        var backoff = TimeSpan.FromSeconds(1);
        try
        {
            while (!ct.IsCancellationRequested)
            {
                try
                {
                    if (_source is null)
                    {
                        Open();
                    }

                    // Events wake the poll at once; the timeout only bounds how stale the lost count gets and how long
                    // a stop waits, so an idle node's reader wakes once a second (it was 4 times).
                    _source!.Poll(e => Handle(e), 1000);
                    CountLost(_source.Lost);
                    _error = null;
                    backoff = TimeSpan.FromSeconds(1);
                }
                catch (Exception e) when (!(e is OperationCanceledException && ct.IsCancellationRequested))
                {
                    // One bad pass (the maps not there yet, a map read failing, a bug) must not end the flow log: report, back off, go on.
                    _error = AgentLoops.Describe(e);
                    AgentMetrics.LoopFailures.WithLabels("flows", e.GetType().Name).Inc();
                    loops.Log($"flows: {(_source is null ? "opening the event ring" : "reading events")} failed: {_error}; again in {backoff.TotalSeconds:0}s");
                    ct.WaitHandle.WaitOne(backoff);
                    backoff = TimeSpan.FromSeconds(Math.Min(backoff.TotalSeconds * 2, 30));
                }
            }
        }
        catch (Exception e) when (!(e is OperationCanceledException && ct.IsCancellationRequested))
        {
            _error = $"the event reader ended: {AgentLoops.Describe(e)}";
        }
        finally
        {
            _readerEnded = !ct.IsCancellationRequested;
        }
    }

    /// <summary>Tells the programs to emit and opens the ring; losses count from here (the ring's counter outlives agents).</summary>
    private void Open()
    {
        configure(true, node.Config.FlowAggregation);
        var source = open();
        _lostBase = source.Lost;
        _source = source;
        loops.Log($"flows: events on ({node.Config.FlowAggregation} aggregation), keeping the last {_ring.Capacity}");
    }

    private void CountLost(long total)
    {
        var lost = Math.Max(0, total - _lostBase);
        var before = Interlocked.Exchange(ref _lost, lost);
        if (lost > before)
        {
            AgentMetrics.LostEvents.Inc(lost - before);
        }
    }

    /// <summary>The flow metrics of one kept flow (per pod only when asked for: a series per pod).</summary>
    internal void Count(Flow flow)
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
            var key = (pod.Namespace!, pod.Pod);
            if (!_podSeries.TryGetValue(key, out var series))
            {
                _podSeries[key] = series = [];
            }

            AgentMetrics.PodFlowsProcessed.WithLabels(pod.Namespace!, pod.Pod, flow.Type, flow.Verdict).Inc();
            series.Add((false, flow.Type, flow.Verdict));
            if (flow.Type == "drop")
            {
                AgentMetrics.PodDrops.WithLabels(pod.Namespace!, pod.Pod, flow.DropReason ?? "", direction).Inc();
                series.Add((true, flow.DropReason ?? "", direction));
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
            // Tried again at the next age or pass; until then the flows keep the names they had (a link dump failing
            // must not stall the events).
            _namesVersion = current.Version;
            _namesBuilt = Stopwatch.GetTimestamp();
            try
            {
                var (endpoints, nodes) = policy.Objects();
                var list = endpoints.ToList();
                _names = new FlowDirectory(list, current.Ipcache, current.Identities, nodes, services?.ServiceInfos() ?? [], Interfaces());
                ForgetPods(list);
                _namesFailing = false;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                if (!_namesFailing)
                {
                    loops.Log($"flows: naming flows failed, keeping the previous names: {AgentLoops.Describe(e)}");
                    _namesFailing = true;
                }
            }
        }

        return _names;
    }

    /// <summary>Removes the per-pod series of local pods whose endpoint is gone (event thread, as <see cref="Count"/>).</summary>
    internal void ForgetPods(IEnumerable<Endpoint> endpoints)
    {
        if (_podSeries.Count == 0)
        {
            return;
        }

        var present = endpoints.Where(e => e.Node == node.Name).Select(e => (e.Namespace, e.Name)).ToHashSet();
        foreach (var gone in _podSeries.Keys.Where(k => !present.Contains(k)).ToList())
        {
            foreach (var (drop, a, b) in _podSeries[gone])
            {
                (drop ? AgentMetrics.PodDrops : AgentMetrics.PodFlowsProcessed).RemoveLabelled(gone.Namespace, gone.Pod, a, b);
            }

            _podSeries.Remove(gone);
        }
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

/// <summary>One agent's answer to a flows query.</summary>
internal sealed record FlowAnswer(List<Flow> Flows, long Lost, string Instance, bool Capped);
