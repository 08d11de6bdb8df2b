using Loom.Core.Model;

namespace Loom.Lab;

/// <summary>Scheduler glue: the scheduler's view of the lab, and a pod created where it fits or recorded Pending.</summary>
internal static class LabScheduling
{
    /// <summary>Schedules and creates one pod (or records it Pending with the reason, which is also written as a warning).</summary>
    internal static async Task CreatePodAsync(LabState state, string ns, string name, LabPodSpec spec, string? owner, TextWriter output, CancellationToken cancellationToken)
    {
        var (nodes, pods) = await SchedulerViewAsync(state, cancellationToken).ConfigureAwait(false);
        var placed = Scheduler.Schedule(ns, spec, nodes, pods);
        if (!placed.Scheduled)
        {
            state.Change(c =>
            {
                c.Pending.RemoveAll(x => x.Namespace == ns && x.Name == name);
                c.Pending.Add(new LabPendingPod { Namespace = ns, Name = name, Owner = owner, Spec = spec, Reason = placed.Reason!, Created = DateTimeOffset.UtcNow });
            });
            await output.WriteLineAsync($"Warning  FailedScheduling  pod/{name}  {placed.Reason}").ConfigureAwait(false);
            return;
        }

        // The agent takes a pod's endpoint as ready at CNI ADD (there is no readiness probe), so the workload starts,
        // and listens on 0.0.0.0, before the pod is wired: no Service sends a connection to a pod that would refuse it.
        IReadOnlyList<(string, int)> StartFirst(string netns)
        {
            var started = LabKubelet.Start(state, ns, name, netns, placed.Node!, spec);
            foreach (var w in started)
            {
                LabKubelet.WaitReadyAsync(name, netns, w, cancellationToken).GetAwaiter().GetResult();
            }

            return [.. started.Select(w => (w.Container, w.Pid))];
        }

        var pod = LabPods.AddPod(state, name, placed.Node!, ns, spec.Labels, spec, owner, StartFirst);
        await output.WriteLineAsync($"pod/{name} scheduled to {placed.Node}: {pod.Ip}").ConfigureAwait(false);
    }

    /// <summary>Nodes (from the store: labels, taints, cordon, Ready) and running pods, for the scheduler.</summary>
    internal static async Task<(List<SchedulerNode> Nodes, List<SchedulerPod> Pods)> SchedulerViewAsync(LabState state, CancellationToken cancellationToken)
    {
        var stored = await LabStore.ReadNodesAsync(state, cancellationToken).ConfigureAwait(false);
        var nodes = state.Nodes.Select(n => stored.TryGetValue(n.Name, out var s)
            ? new SchedulerNode(n.Name, s.Labels, s.Taints, s.Unschedulable, s.Ready)
            : new SchedulerNode(n.Name, new Dictionary<string, string> { [Scheduler.HostnameLabel] = n.Name }, [], false, false)).ToList();
        var pods = state.Pods.Select(p => new SchedulerPod(p.Namespace, p.Name, p.Node, p.Labels, p.Spec?.AntiAffinity ?? [], p.Spec?.PreferredAntiAffinity)).ToList();
        return (nodes, pods);
    }
}
