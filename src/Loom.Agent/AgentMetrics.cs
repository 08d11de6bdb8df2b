using Prometheus;

namespace Loom.Agent;

/// <summary>The agent's Prometheus metrics (served when <c>metricsAddress</c> is set).</summary>
internal static class AgentMetrics
{
    public static readonly Counter ServiceSyncs = Metrics.CreateCounter(
        "loom_service_syncs_total", "Service syncs, by backend and result.", "backend", "result");

    public static readonly Histogram ServiceSyncDuration = Metrics.CreateHistogram(
        "loom_service_sync_duration_seconds", "Time to program the node's Services into the kernel.",
        new HistogramConfiguration { LabelNames = ["backend"], Buckets = Histogram.ExponentialBuckets(0.001, 2, 16) });

    public static readonly Histogram ServiceEventToWrite = Metrics.CreateHistogram(
        "loom_service_event_to_write_seconds", "From a Service or Endpoint change reaching the agent's cache to its entries written into the kernel.",
        new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.00005, 2, 20) });

    public static readonly Counter ConntrackEntriesDeleted = Metrics.CreateCounter(
        "loom_conntrack_entries_deleted_total", "Stale UDP conntrack entries deleted after service writes (an endpoint gone, a Service gone or newly given endpoints), as kube-proxy does; iptables and nftables only.");

    public static readonly Counter BpfConntrackGcDeleted = Metrics.CreateCounter(
        "loom_bpf_ct_gc_deleted_total", "lb4_ct and lb4_snat entries the eBPF conntrack GC deleted (expired, or of a Service gone).");

    public static readonly Gauge Services = Metrics.CreateGauge("loom_services", "Service ports programmed on this node.");

    public static readonly Gauge ServiceEndpoints = Metrics.CreateGauge("loom_service_endpoints", "Backends across all programmed service ports.");

    public static readonly Gauge NetworkPeers = Metrics.CreateGauge("loom_network_peers", "Peer nodes routed to, summed over the node's networks.");

    public static readonly Counter NetworkPasses = Metrics.CreateCounter("loom_network_passes_total", "Passes of the network controller (networks, peers, primary network).");

    public static readonly Gauge LocalEndpoints = Metrics.CreateGauge("loom_endpoints", "Endpoints (pod attachments) on this node.");

    public static readonly Counter PolicyVerdicts = Metrics.CreateCounter(
        "loom_policy_verdicts_total", "Packets the policy programs judged on this node, by action (allowed, dropped; deferred: a Service packet judged again after the DNAT; passed: no verdict, e.g. policy off or not IPv4), direction of the endpoint (ingress, egress; a deferred verdict is its sender's egress) and reason.",
        "action", "direction", "reason");

    public static readonly Counter Drops = Metrics.CreateCounter(
        "loom_drop_total", "Packets the datapath dropped, from its drop events, by reason (Hubble's names) and direction of the local endpoint.", "reason", "direction");

    public static readonly Counter FlowsProcessed = Metrics.CreateCounter(
        "loom_flows_processed_total", "Flow events the agent received and kept, by type (trace, drop, policy-verdict, translation) and verdict.", "type", "verdict");

    public static readonly Counter LostEvents = Metrics.CreateCounter(
        "loom_lost_events_total", "Flow events the datapath could not hand to the agent (its ring buffer was full).");

    public static readonly Counter PodDrops = Metrics.CreateCounter(
        "loom_pod_drop_total", "As loom_drop_total, per local pod (flowMetricsPerPod).", "namespace", "pod", "reason", "direction");

    public static readonly Counter PodFlowsProcessed = Metrics.CreateCounter(
        "loom_pod_flows_processed_total", "As loom_flows_processed_total, per local pod (flowMetricsPerPod).", "namespace", "pod", "type", "verdict");

    public static readonly Histogram PolicyPassSeconds = Metrics.CreateHistogram(
        "loom_policy_pass_seconds", "One policy pass: identities, ipcache and every local endpoint's policy compiled and written.",
        new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0005, 2, 16) });

    public static readonly Gauge PolicyIdentities = Metrics.CreateGauge("loom_policy_identities", "Security identities known to this node (allocated and reserved ones in use).");

    public static readonly Counter InvalidObjects = Metrics.CreateCounter(
        "loom_invalid_objects_total", "Stored objects the agent refused (and skipped), by kind and reason; counted once per object and reason until it changes.",
        "kind", "reason");

    public static readonly Counter LoopFailures = Metrics.CreateCounter(
        "loom_agent_loop_failures_total", "Failed passes of the agent's loops (store unreachable, firewall tool failed...), by loop and exception type.",
        "loop", "error");

    public static readonly Gauge LoopBackoff = Metrics.CreateGauge(
        "loom_agent_loop_backoff_seconds", "Delay before a failing loop retries; 0 when its last pass succeeded.", "loop");

    public static readonly Gauge BpfMapEntries = Metrics.CreateGauge(
        "loom_bpf_map_entries", "Entries in each eBPF load-balancer map (recounted at most every 15 s: a walk of its keys).", "map");

    public static readonly Gauge BpfMapMaxEntries = Metrics.CreateGauge(
        "loom_bpf_map_max_entries", "Capacity (max_entries) of each eBPF load-balancer map.", "map");

    /// <summary>Sets the BPF map gauges from <paramref name="fill"/> before each scrape (it caches its counts).</summary>
    public static void ObserveBpfMaps(Func<IReadOnlyList<Loom.Datapath.Services.Ebpf.LbMapFill>> fill) =>
        Metrics.DefaultRegistry.AddBeforeCollectCallback(() =>
        {
            foreach (var f in fill())
            {
                BpfMapEntries.WithLabels(f.Map).Set(f.Entries);
                BpfMapMaxEntries.WithLabels(f.Map).Set(f.MaxEntries);
            }
        });

    public static readonly Gauge StoreReachable = Metrics.CreateGauge(
        "loom_store_reachable", "1 while the agent reaches its store (etcd or SQLite), 0 from the first call failing on the transport or a lock until one succeeds.");

    public static readonly Gauge StoreUnreachableSeconds = Metrics.CreateGauge(
        "loom_store_unreachable_seconds", "Seconds since the store became unreachable; 0 while reachable.");

    /// <summary>Starts the /metrics endpoint; the returned server stops it.</summary>
    public static IMetricServer? Start(string? address)
    {
        if (string.IsNullOrEmpty(address))
        {
            return null;
        }

        var colon = address.LastIndexOf(':');
        var host = colon > 0 ? address[..colon] : "+";
        var port = int.Parse(address[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        if (host is "0.0.0.0" or "*")
        {
            host = "+";
        }

        return new MetricServer(host, port).Start();
    }

    public static readonly Counter EndpointReconcile = Metrics.CreateCounter(
        "loom_endpoint_reconcile_total", "What the endpoint reconciler did, by action: endpoint_removed (a stale Endpoint: its address or veth gone), address_released (an address a DEL left pending release), allocation_rebuilt and allocation_corrupt (an IPAM file naming no owner).",
        "action");
}
