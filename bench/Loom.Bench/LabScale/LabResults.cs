namespace Loom.Bench.LabScale;

/// <summary>One node of one backend's lab: catch-up, memory, and its event-to-live samples.</summary>
internal sealed class NodeResult
{
    public required string Node { get; init; }

    /// <summary>
    /// Seconds from the start of the apply until the agent's loom_services reached every service port and its
    /// loom_service_endpoints every endpoint (the webpod pods come last in the apply); null if it never did.
    /// </summary>
    public double? CaughtUpS { get; set; }

    /// <summary>The agent's last loom_services and loom_service_endpoints readings.</summary>
    public double? ServicePorts { get; set; }

    public double? Endpoints { get; set; }

    /// <summary>VmRSS / VmHWM of the agent (MB) once caught up (or at the timeout), and at the end of the probes.</summary>
    public double? RssMb { get; set; }

    public double? PeakRssMb { get; set; }

    public double? RssEndMb { get; set; }

    public double? PeakRssEndMb { get; set; }

    /// <summary>loom_service_syncs_total and loom_service_sync_duration_seconds_sum at catch-up.</summary>
    public double? Syncs { get; set; }

    public double? SyncSeconds { get; set; }

    /// <summary>Per probe: ms from the store write to the first connection that reached whoami (null: not within the probe timeout).</summary>
    public List<double?> LiveMs { get; } = [];

    public List<double?> AnsweredMs { get; } = [];

    public List<int> Attempts { get; } = [];

    /// <summary>loom_service_event_to_write_seconds over the probes (the agent's own view), when the agent exports it.</summary>
    public HistogramSummary? EventToWrite { get; set; }
}

/// <summary>A histogram's observations over a window, with bucket-bound quantiles in ms.</summary>
internal sealed record HistogramSummary(double Count, double P50Ms, double P99Ms);

/// <summary>One agent's loom_services and loom_service_endpoints readings during the apply (seconds from its start).</summary>
internal sealed record GaugePoint(double AtS, string Node, double ServicePorts, double? Endpoints);

internal sealed class BackendResult
{
    public required string Backend { get; init; }

    public required string Prefix { get; init; }

    /// <summary>ok, timeout (apply or catch-up past --timeout), or error.</summary>
    public string Status { get; set; } = "ok";

    public string? Error { get; set; }

    public double? UpS { get; set; }

    public double? ApplyS { get; set; }

    /// <summary>ok, timeout (the apply was killed) or failed.</summary>
    public string ApplyStatus { get; set; } = "not run";

    /// <summary>Service ports every agent must program: what the store held before plus the manifest's.</summary>
    public int ExpectedServicePorts { get; set; }

    /// <summary>Backends across those ports: what the store held before plus 2 webpod pods behind each selecting Service.</summary>
    public int ExpectedEndpoints { get; set; }

    /// <summary>Services the apply wrote to the store (all N, or how far a killed apply got).</summary>
    public int ServicesInStore { get; set; }

    /// <summary>Seconds from the apply's start until the last agent caught up; null if one never did.</summary>
    public double? AllCaughtUpS { get; set; }

    public int ProbesRun { get; set; }

    public string LoadStart { get; set; } = "";

    public string LoadEnd { get; set; } = "";

    public List<NodeResult> Nodes { get; } = [];

    public List<GaugePoint> Timeline { get; } = [];
}
