using Prometheus;

namespace Loom.Kubernetes;

/// <summary>The Kubernetes source's metrics, on the agent's /metrics.</summary>
internal static class KubernetesMetrics
{
    public static readonly Counter WatchEvents = Metrics.CreateCounter(
        "loom_k8s_watch_events_total", "Watch events the Kubernetes source received, by resource and type (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR).",
        "resource", "type");

    public static readonly Counter Relists = Metrics.CreateCounter(
        "loom_k8s_relists_total", "Full lists of a resource, by reason: initial, or gone (the watch's resourceVersion was compacted: 410 Gone).",
        "resource", "reason");
}
