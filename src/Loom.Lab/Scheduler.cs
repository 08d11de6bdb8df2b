using System.Globalization;
using Loom.Core.Model;
using Loom.Core.Selection;

namespace Loom.Lab;

/// <summary>A node as the scheduler sees it.</summary>
public sealed record SchedulerNode(string Name, IReadOnlyDictionary<string, string> Labels, IReadOnlyList<Taint> Taints, bool Unschedulable, bool Ready = true);

/// <summary>A pod already placed (running), as the scheduler sees it.</summary>
public sealed record SchedulerPod(string Namespace, string Name, string Node, IReadOnlyDictionary<string, string> Labels, IReadOnlyList<LabAntiAffinityTerm> AntiAffinity,
    IReadOnlyList<LabWeightedAntiAffinityTerm>? PreferredAntiAffinity = null);

/// <summary>Where a pod goes, or why it stays Pending (kubectl's FailedScheduling text).</summary>
public sealed record ScheduleResult(string? Node, string? Reason)
{
    public bool Scheduled => Node is not null;
}

/// <summary>
/// kube-scheduler's filters for the fields the lab honours, in its plugin order (NodeUnschedulable, NodeName,
/// TaintToleration, NodeAffinity via nodeSelector, InterPodAffinity), then scores: preferred pod anti-affinity
/// (InterPodAffinity's score), then the least-loaded node. <c>nodeName</c>
/// bypasses the scheduler altogether, as it does in Kubernetes (so it ignores taints and cordon).
/// </summary>
public static class Scheduler
{
    public const string HostnameLabel = "kubernetes.io/hostname";

    public static ScheduleResult Schedule(string @namespace, LabPodSpec spec, IReadOnlyList<SchedulerNode> nodes, IReadOnlyList<SchedulerPod> pods)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(nodes);
        ArgumentNullException.ThrowIfNull(pods);
        if (!string.IsNullOrEmpty(spec.NodeName))
        {
            return nodes.Any(n => n.Name == spec.NodeName)
                ? new ScheduleResult(spec.NodeName, null)
                : new ScheduleResult(null, $"node \"{spec.NodeName}\" not found");
        }

        var reasons = new Dictionary<string, int>(StringComparer.Ordinal);
        var fit = new List<SchedulerNode>();
        foreach (var node in nodes)
        {
            var why = Filter(@namespace, spec, node, nodes, pods);
            if (why is null)
            {
                fit.Add(node);
            }
            else
            {
                reasons[why] = reasons.GetValueOrDefault(why) + 1;
            }
        }

        if (fit.Count == 0)
        {
            var parts = reasons.Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Value} node(s) {kv.Key}")).Order(StringComparer.Ordinal);
            var text = string.Create(CultureInfo.InvariantCulture, $"0/{nodes.Count} nodes are available");
            return new ScheduleResult(null, nodes.Count == 0 ? text + "." : $"{text}: {string.Join(", ", parts)}.");
        }

        // The fewest preferred anti-affinity weights against the node, then spread: the fewest pods, then by name.
        var best = fit.OrderBy(n => PreferredPenalty(@namespace, spec, n, nodes, pods))
            .ThenBy(n => pods.Count(p => p.Node == n.Name)).ThenBy(n => n.Name, StringComparer.Ordinal).First();
        return new ScheduleResult(best.Name, null);
    }

    private static string? Filter(string ns, LabPodSpec spec, SchedulerNode node, IReadOnlyList<SchedulerNode> nodes, IReadOnlyList<SchedulerPod> pods)
    {
        if (node.Unschedulable && !spec.Tolerations.Any(t => t.Tolerates(new Taint("node.kubernetes.io/unschedulable", null, TaintEffect.NoSchedule))))
        {
            return "were unschedulable";
        }

        if (!node.Ready && !spec.Tolerations.Any(t => t.Tolerates(new Taint("node.kubernetes.io/not-ready", null, TaintEffect.NoSchedule))))
        {
            return "had untolerated taint {node.kubernetes.io/not-ready: }";
        }

        foreach (var taint in node.Taints.Where(t => t.Effect is TaintEffect.NoSchedule or TaintEffect.NoExecute))
        {
            if (!spec.Tolerations.Any(t => t.Tolerates(taint)))
            {
                return $"had untolerated taint {{{taint.Key}: {taint.Value}}}";
            }
        }

        if (!LabelSelector.FromSet(spec.NodeSelector).Matches(node.Labels))
        {
            return "didn't match Pod's node affinity/selector";
        }

        // The new pod's required anti-affinity: no matching pod (same namespace) in the node's topology domain.
        foreach (var term in spec.AntiAffinity)
        {
            if (!node.Labels.TryGetValue(term.TopologyKey, out var domain))
            {
                continue;
            }

            if (pods.Any(p => p.Namespace == ns && term.Selector.Matches(p.Labels) && SameDomain(p.Node, term.TopologyKey, domain, nodes)))
            {
                return "didn't match pod anti-affinity rules";
            }
        }

        // Existing pods' anti-affinity against the new pod (the rule is symmetric for required terms).
        foreach (var p in pods.Where(p => p.Namespace == ns))
        {
            foreach (var term in p.AntiAffinity)
            {
                if (term.Selector.Matches(spec.Labels) && node.Labels.TryGetValue(term.TopologyKey, out var domain)
                    && SameDomain(p.Node, term.TopologyKey, domain, nodes))
                {
                    return "didn't satisfy existing pods anti-affinity rules";
                }
            }
        }

        return null;
    }

    /// <summary>
    /// InterPodAffinity's score for preferred anti-affinity, as a penalty: the weight of each of the new pod's terms per
    /// matching pod in the node's domain, and of each such pod's terms that match the new pod (kube-scheduler counts both).
    /// </summary>
    private static int PreferredPenalty(string ns, LabPodSpec spec, SchedulerNode node, IReadOnlyList<SchedulerNode> nodes, IReadOnlyList<SchedulerPod> pods)
    {
        var penalty = 0;
        foreach (var p in pods.Where(p => p.Namespace == ns))
        {
            foreach (var w in spec.PreferredAntiAffinity)
            {
                if (w.Term.Selector.Matches(p.Labels) && node.Labels.TryGetValue(w.Term.TopologyKey, out var domain) && SameDomain(p.Node, w.Term.TopologyKey, domain, nodes))
                {
                    penalty += w.Weight;
                }
            }

            foreach (var w in p.PreferredAntiAffinity ?? [])
            {
                if (w.Term.Selector.Matches(spec.Labels) && node.Labels.TryGetValue(w.Term.TopologyKey, out var domain) && SameDomain(p.Node, w.Term.TopologyKey, domain, nodes))
                {
                    penalty += w.Weight;
                }
            }
        }

        return penalty;
    }

    private static bool SameDomain(string podNode, string key, string domain, IReadOnlyList<SchedulerNode> nodes) =>
        nodes.FirstOrDefault(n => n.Name == podNode) is { } n && n.Labels.TryGetValue(key, out var v) && v == domain;
}
