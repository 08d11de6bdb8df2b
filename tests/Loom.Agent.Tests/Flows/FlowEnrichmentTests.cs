using System.Net;
using Loom.Agent.Flows;
using Loom.Agent.Policy;
using Loom.Core.AgentApi;
using Loom.Core.Flows;
using Loom.Core.Model;
using Loom.Core.Policy;
using Loom.Core.Store;

namespace Loom.Agent.Tests.Flows;

/// <summary>Events as the programs write them, named from constructed endpoints, identities, nodes and Services.</summary>
public sealed class FlowEnrichmentTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    private static readonly Endpoint Client = Ep("x", "client", "n1", "10.244.1.5", ("app", "client"));
    private static readonly Endpoint Server = Ep("y", "server", "n2", "10.244.2.7", ("app", "server"));
    private static readonly SecurityLabels ClientLabels = SecurityLabels.Of("x", Client.Labels, new Dictionary<string, string>());

    private static readonly FlowDirectory Names = new(
        [Client, Server],
        new Dictionary<IPNetwork, uint>
        {
            [IPNetwork.Parse("10.244.1.5/32")] = 300,
            [IPNetwork.Parse("10.244.2.7/32")] = 301,
            [IPNetwork.Parse("192.168.50.11/32")] = ReservedIdentity.Host,
            [IPNetwork.Parse("192.168.50.12/32")] = ReservedIdentity.RemoteNode,
        },
        new Dictionary<uint, SecurityLabels> { [300] = ClientLabels },
        [Node("n1", "192.168.50.11", "10.244.1.0/24"), Node("n2", "192.168.50.12", "10.244.2.0/24")],
        [new ServiceInfo { Namespace = "y", Name = "web", ClusterIp = "10.96.0.20", Port = 80, Protocol = "TCP" }],
        new Dictionary<int, string> { [7] = "veth1a2b3c" });

    [Fact]
    public void A_policy_drop_names_both_pods_their_identities_the_reason_and_direction()
    {
        var e = Event(FlowEventType.Drop, ObservationPoint.ToEndpoint, "10.244.1.5", 43210, "10.244.2.7", 80) with
        {
            Reason = (byte)DropReason.PolicyDenied, TcpFlags = 0x02, Ifindex = 7, SourceIdentity = 300, DestinationIdentity = 301,
        };
        var f = FlowEnricher.Enrich(e, "n2", Now, Names);
        Assert.Equal(("drop", "DROPPED", "POLICY_DENIED", "ingress"), (f.Type, f.Verdict, f.DropReason, f.TrafficDirection));
        Assert.Equal(("x", "client", "n1", 300u, 43210), (f.Source.Namespace, f.Source.Pod, f.Source.Node, f.Source.Identity, f.Source.Port));
        Assert.Equal(("y", "server", "n2", 301u), (f.Destination.Namespace, f.Destination.Pod, f.Destination.Node, f.Destination.Identity));
        Assert.Contains("k8s:app=client", f.Source.Labels);
        Assert.Contains("k8s:io.kubernetes.pod.namespace=x", f.Source.Labels);
        Assert.Equal(("TCP", "SYN", "veth1a2b3c", "n2"), (f.Protocol, f.TcpFlags, f.Interface, f.Node));
        Assert.Equal("Dec 1 13:00:00.000 n2: x/client:43210 (ID:300) -> y/server:80 (ID:301) to-endpoint DROPPED POLICY_DENIED (TCP Flags: SYN)",
            FlowFormat.Compact(f with { Time = new DateTimeOffset(2026, 12, 1, 13, 0, 0, TimeSpan.Zero) }));
    }

    [Fact]
    public void Identities_the_datapath_left_out_come_from_the_ipcache_and_the_rest_is_world()
    {
        var e = Event(FlowEventType.Trace, ObservationPoint.FromOverlay, "192.168.50.12", 8472, "10.244.2.7", 80);
        var f = FlowEnricher.Enrich(e, "n2", Now, Names);
        Assert.Equal((ReservedIdentity.RemoteNode, "n2"), (f.Source.Identity, f.Source.Node));
        Assert.Equal(["reserved:remote-node"], f.Source.Labels);
        Assert.Equal(301u, f.Destination.Identity);
        var outside = FlowEnricher.Enrich(Event(FlowEventType.Trace, ObservationPoint.FromNetwork, "203.0.113.9", 443, "10.244.2.99", 5000), "n2", Now, Names);
        Assert.Equal((ReservedIdentity.World, (string?)null), (outside.Source.Identity, outside.Source.Node));
        Assert.Equal((ReservedIdentity.Unknown, "n2"), (outside.Destination.Identity, outside.Destination.Node)); // in n2's block, no pod known
        Assert.Null(outside.Destination.Pod);
        Assert.Equal(("FORWARDED", (string?)null, "from-network"), (outside.Verdict, outside.DropReason, outside.ObservationPoint));
    }

    [Fact]
    public void A_translation_names_the_service_of_its_frontend_and_a_clusterip_destination_its_service()
    {
        var e = Event(FlowEventType.Translation, ObservationPoint.Socket, "10.244.1.5", 43210, "10.244.2.7", 8080) with
        {
            Flags = FlowEventMarks.Translated, OriginalDestination = IPAddress.Parse("10.96.0.20"), OriginalDestinationPort = 80,
        };
        var f = FlowEnricher.Enrich(e, "n1", Now, Names);
        Assert.Equal(("translation", "TRANSLATED", "10.96.0.20:80"), (f.Type, f.Verdict, f.OriginalDestination));
        Assert.Equal(new FlowService("y", "web"), f.DestinationService);
        Assert.Equal("server", f.Destination.Pod);
        var toClusterIp = FlowEnricher.Enrich(Event(FlowEventType.Trace, ObservationPoint.FromEndpoint, "10.244.1.5", 43210, "10.96.0.20", 80), "n1", Now, Names);
        Assert.Equal(new FlowService("y", "web"), toClusterIp.DestinationService);
        Assert.Equal("egress", toClusterIp.TrafficDirection);
        var udp = FlowEnricher.Enrich(Event(FlowEventType.Trace, ObservationPoint.FromEndpoint, "10.244.1.5", 43210, "10.96.0.20", 80) with { Protocol = 17 }, "n1", Now, Names);
        Assert.Null(udp.DestinationService); // the Service has TCP/80 only
        var atConnect = FlowEnricher.Enrich(e with { Source = IPAddress.Any, SourcePort = 0 }, "n1", Now, Names);
        Assert.Equal(("", 0u), (atConnect.Source.Ip, atConnect.Source.Identity)); // no address yet: not "world"
    }

    [Fact]
    public void Policy_verdicts_and_replies()
    {
        var allowed = Event(FlowEventType.Policy, ObservationPoint.FromEndpoint, "10.244.1.5", 43210, "10.244.2.7", 80) with
        {
            Flags = FlowEventMarks.Allowed | FlowEventMarks.Egress, Reason = 0, DestinationIdentity = 301,
        };
        var f = FlowEnricher.Enrich(allowed, "n1", Now, Names);
        Assert.Equal(("policy-verdict", "FORWARDED", "egress", (string?)null), (f.Type, f.Verdict, f.TrafficDirection, f.DropReason));
        Assert.Equal("AllowedByRule, peer ID:301", f.PolicyMatch);
        var denied = FlowEnricher.Enrich(allowed with { Flags = FlowEventMarks.None, Reason = 5 }, "n1", Now, Names);
        Assert.Equal(("DROPPED", "ingress", "POLICY_DENIED"), (denied.Verdict, denied.TrafficDirection, denied.DropReason));
        var reply = FlowEnricher.Enrich(Event(FlowEventType.Trace, ObservationPoint.ToEndpoint, "10.244.2.7", 80, "10.244.1.5", 43210) with
        {
            Flags = FlowEventMarks.Reply, TcpFlags = 0x12,
        }, "n1", Now, Names);
        Assert.True(reply.IsReply);
        Assert.Equal("SYN, ACK", reply.TcpFlags);
        Assert.StartsWith("Nov 30 12:00:00.000 n1: x/client:43210 (ID:300) <- y/server:80 (ID:301) to-endpoint", FlowFormat.Compact(reply), StringComparison.Ordinal);
    }

    [Fact]
    public void Wall_time_is_the_events_age_back_from_now()
    {
        Assert.Equal(Now.AddMilliseconds(-1500), FlowEnricher.WallTime(10_000_000_000, 11_500_000_000, Now));
        Assert.Equal(Now, FlowEnricher.WallTime(12_000_000_000, 11_500_000_000, Now)); // never in the future
    }

    [Fact]
    public async Task The_controller_reads_on_its_thread_keeps_the_flows_and_counts_the_lost()
    {
        await using var store = MemoryStore.Create();
        var config = new AgentConfig { Node = "n1", FlowBufferSize = 3 };
        var node = new NodeContext("n1", config, new ClusterConfig(), IPAddress.Loopback, 1500, IPNetwork.Parse("10.244.1.0/24"));
        var loops = new AgentLoops(store, TextWriter.Null);
        var source = new QueueSource();
        var configured = new List<(bool, string)>();
        using var policy = new PolicyController(node, store, loops, () => []);
        using var flows = new FlowController(node, loops, policy, null, () => source, (on, agg) => configured.Add((on, agg)));
        await flows.StartAsync(CancellationToken.None);
        for (ushort port = 1; port <= 5; port++)
        {
            source.Events.Enqueue(Event(FlowEventType.Drop, ObservationPoint.ToEndpoint, "10.244.1.5", port, "10.244.1.6", 80) with { Reason = 133 });
        }

        var drops = AgentMetrics.Drops.WithLabels("POLICY_DENIED", "ingress").Value;
        var processed = AgentMetrics.FlowsProcessed.WithLabels("drop", "DROPPED").Value;
        var lost = AgentMetrics.LostEvents.Value;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!source.Polled)
        {
            Assert.True(DateTime.UtcNow < deadline, "the controller never polled its source");
            await Task.Delay(20);
        }

        source.LostCount = 2; // after the open: the controller counts losses from its baseline there
        FlowAnswer? got;
        while ((got = flows.Query(new FlowQuery { Last = 0 }))!.Flows.LastOrDefault()?.Seq != 5 || got.Lost != 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "the controller did not take the events");
            await Task.Delay(20);
        }

        Assert.Equal([(true, "medium")], configured); // on the reader thread, before the ring is opened
        Assert.Equal([3, 4, 5], got.Flows.Select(f => f.Source.Port));
        Assert.All(got.Flows, f => Assert.Equal(("n1", "POLICY_DENIED"), (f.Node, f.DropReason)));
        Assert.Equal([5L], flows.Query(new FlowQuery { AfterSeq = 4 })!.Flows.Select(f => f.Seq));
        Assert.Contains("3/3 flows kept, 2 lost", flows.Describe().Summary, StringComparison.Ordinal);
        Assert.Equal(5, AgentMetrics.Drops.WithLabels("POLICY_DENIED", "ingress").Value - drops);
        Assert.Equal(5, AgentMetrics.FlowsProcessed.WithLabels("drop", "DROPPED").Value - processed);
        Assert.Equal(2, AgentMetrics.LostEvents.Value - lost);
        Assert.Equal([3L, 4L, 5L], flows.Query(new FlowQuery { AfterSeq = 900, Last = 0 })!.Flows.Select(f => f.Seq)); // a follower from before a restart
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Per_pod_metrics_count_the_local_pod_only_when_asked(bool perPod)
    {
        await using var store = MemoryStore.Create();
        var config = new AgentConfig { Node = "n2", FlowMetricsPerPod = perPod };
        var node = new NodeContext("n2", config, new ClusterConfig(), IPAddress.Loopback, 1500, IPNetwork.Parse("10.244.2.0/24"));
        var loops = new AgentLoops(store, TextWriter.Null);
        using var policy = new PolicyController(node, store, loops, () => []);
        using var flows = new FlowController(node, loops, policy, null, () => new QueueSource(), (_, _) => { });
        var ns = perPod ? "per-pod-on" : "per-pod-off";
        var drop = FlowEnricher.Enrich(Event(FlowEventType.Drop, ObservationPoint.ToEndpoint, "10.244.1.5", 1, "10.244.2.7", 80) with { Reason = 133 }, "n2", Now, Names);
        drop = drop with { Destination = drop.Destination with { Namespace = ns } };
        var before = AgentMetrics.PodDrops.WithLabels(ns, "server", "POLICY_DENIED", "ingress").Value;
        flows.Count(drop);
        flows.Count(drop with { Source = drop.Source with { Namespace = ns }, Destination = drop.Destination with { Node = "n1" } }); // not this node's pod
        Assert.Equal(perPod ? 1 : 0, AgentMetrics.PodDrops.WithLabels(ns, "server", "POLICY_DENIED", "ingress").Value - before);
        Assert.Equal(0, AgentMetrics.PodDrops.WithLabels(ns, "client", "POLICY_DENIED", "ingress").Value);
        // The pod's endpoint goes: its series go (a pod still there keeps them).
        flows.ForgetPods([Server with { Namespace = ns }]);
        Assert.Equal(perPod ? 1 : 0, AgentMetrics.PodDrops.WithLabels(ns, "server", "POLICY_DENIED", "ingress").Value - before);
        flows.ForgetPods([]);
        Assert.DoesNotContain(AgentMetrics.PodFlowsProcessed.GetAllLabelValues(), l => l[0] == ns);
        Assert.Equal(0, AgentMetrics.PodDrops.WithLabels(ns, "server", "POLICY_DENIED", "ingress").Value); // made anew by this read
    }

    [Fact]
    public async Task Off_the_programs_are_told_so_no_ring_is_read_and_queries_are_refused()
    {
        await using var store = MemoryStore.Create();
        var config = new AgentConfig { Node = "n1", FlowEvents = false, FlowAggregation = "none" };
        var node = new NodeContext("n1", config, new ClusterConfig(), IPAddress.Loopback, 1500, IPNetwork.Parse("10.244.1.0/24"));
        var loops = new AgentLoops(store, TextWriter.Null);
        var configured = new List<(bool, string)>();
        using var policy = new PolicyController(node, store, loops, () => []);
        using var flows = new FlowController(node, loops, policy, null, () => throw new InvalidOperationException("opened"), (on, agg) => configured.Add((on, agg)));
        await flows.StartAsync(CancellationToken.None);
        Assert.Equal([(false, "none")], configured);
        Assert.Null(flows.Query(new FlowQuery()));
        Assert.Equal("flow events off", flows.Describe().Summary);
    }

    [Fact]
    public async Task A_ring_that_cannot_be_opened_never_fails_the_start_it_shows_in_the_status_and_is_retried()
    {
        await using var store = MemoryStore.Create();
        var config = new AgentConfig { Node = "n1" };
        var node = new NodeContext("n1", config, new ClusterConfig(), IPAddress.Loopback, 1500, IPNetwork.Parse("10.244.1.0/24"));
        var loops = new AgentLoops(store, TextWriter.Null);
        var source = new QueueSource { LostCount = 7 }; // lost before this agent: not its to report
        var attempts = 0;
        using var policy = new PolicyController(node, store, loops, () => []);
        using var flows = new FlowController(node, loops, policy, null,
            () => ++attempts == 1 ? throw new IOException("no loom_ev_ring pinned") : source, (_, _) => { });
        await flows.StartAsync(CancellationToken.None);
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (flows.Describe().LastError is null)
        {
            Assert.True(DateTime.UtcNow < deadline, "the failure did not show");
            await Task.Delay(10);
        }

        Assert.False(flows.Describe().Healthy);
        Assert.Contains("no loom_ev_ring pinned", flows.Describe().LastError, StringComparison.Ordinal);
        deadline = DateTime.UtcNow.AddSeconds(10);
        while (!flows.Describe().Healthy)
        {
            Assert.True(DateTime.UtcNow < deadline, "the ring was not opened again");
            await Task.Delay(20);
        }

        Assert.Equal(2, attempts);
        Assert.Equal(0, flows.Query(new FlowQuery())!.Lost);
        source.LostCount = 10;
        deadline = DateTime.UtcNow.AddSeconds(5);
        while (flows.Query(new FlowQuery())!.Lost != 3)
        {
            Assert.True(DateTime.UtcNow < deadline, "the loss since the start was not reported");
            await Task.Delay(10);
        }

        Assert.Matches("^[0-9a-f]{16}$", flows.Query(new FlowQuery())!.Instance);
    }

    [Fact]
    public void Off_with_no_maps_pinned_nothing_is_created()
    {
        var dir = Path.Combine(Path.GetTempPath(), "loom-flows-off-" + Guid.NewGuid().ToString("N"));
        RingSource.Configure(new AgentConfig { Node = "n1", BpfPinDir = dir }, false, "medium");
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void Bad_flow_options_are_refused_by_name()
    {
        Assert.Null(FlowController.Validate(new AgentConfig()));
        Assert.Contains("flowAggregation: \"high\"", FlowController.Validate(new AgentConfig { FlowAggregation = "high" }), StringComparison.Ordinal);
        Assert.Contains("flowBufferSize: 0", FlowController.Validate(new AgentConfig { FlowBufferSize = 0 }), StringComparison.Ordinal);
        Assert.Null(FlowController.Validate(new AgentConfig { FlowBufferSize = 65535 }));
        Assert.Contains("flowBufferSize: 65536", FlowController.Validate(new AgentConfig { FlowBufferSize = 65536 }), StringComparison.Ordinal);
    }

    private static FlowEvent Event(FlowEventType type, ObservationPoint point, string src, ushort sport, string dst, ushort dport) =>
        new(1, type, point, 0, FlowEventMarks.None, 6, 0, 0, 0, IPAddress.Parse(src), IPAddress.Parse(dst), sport, dport, null, 0, 0, 0, 60);

    private static Endpoint Ep(string ns, string name, string node, string ip, params (string Key, string Value)[] labels) => new()
    {
        Namespace = ns, Name = name, Node = node, ContainerId = name + "-c", IPs = [IPAddress.Parse(ip)], Labels = labels.ToDictionary(l => l.Key, l => l.Value),
    };

    private static Node Node(string name, string ip, string cidr) =>
        new() { Name = name, UnderlayInterface = "eth1", UnderlayIp = IPAddress.Parse(ip), PodCidrs = [IPNetwork.Parse(cidr)] };

    private sealed class QueueSource : IFlowEventSource
    {
        public System.Collections.Concurrent.ConcurrentQueue<FlowEvent> Events { get; } = new();

        public long LostCount { get; set; }

        public long Lost => LostCount;

        /// <summary>Set once the controller has opened the source (its loss baseline taken) and polled it.</summary>
        public volatile bool Polled;

        public int Poll(Action<FlowEvent> onEvent, int timeoutMs)
        {
            Polled = true;
            var n = 0;
            while (Events.TryDequeue(out var e))
            {
                onEvent(e);
                n++;
            }

            if (n == 0)
            {
                Thread.Sleep(Math.Min(timeoutMs, 10));
            }

            return n;
        }

        public void Dispose()
        {
        }
    }
}
