using System.Text.Json;
using Loom.Core.Cni;
using Loom.Core.Model;
using Loom.Core.Selection;
using Loom.Core.Store;

namespace Loom.Lab;

/// <summary>Node objects: kubeadm's labels and taint, cordon/uncordon and drain.</summary>
internal static class LabNodeControl
{
    /// <summary>Sets or clears a node's Unschedulable (kubectl cordon / uncordon); uncordon reconciles Pending pods.</summary>
    internal static async Task CordonAsync(LabState state, string node, bool cordon, TextWriter output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(output);
        _ = state.Node(node);
        var changed = await UpdateNodeAsync(state, node, n => n.Unschedulable == cordon ? n : n with { Unschedulable = cordon }, cancellationToken).ConfigureAwait(false);
        await output.WriteLineAsync($"node/{node} {(changed ? cordon ? "cordoned" : "uncordoned" : "already " + (cordon ? "cordoned" : "uncordoned"))}").ConfigureAwait(false);
        if (!cordon)
        {
            await LabDeploymentController.ReconcileAsync(state, output, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// kubectl drain, gracefully: cordons the node; a Deployment's pods are first recreated elsewhere (or stay Pending,
    /// with the reason) and the new ones balanced to by every node; then the leaving pods' endpoints are marked not
    /// ready, as a terminating pod's, and only once every running agent has stopped sending new connections to them
    /// are they stopped. Pods no controller owns are refused unless <paramref name="force"/>. If the agents do not
    /// catch up in time, the leaving pods are marked ready again and keep running, the replacements made for them are
    /// deleted, the node stays cordoned, and the error says which node lags.
    /// </summary>
    internal static async Task DrainAsync(LabState state, string node, bool force, TextWriter output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(output);
        state.Refresh();
        var pods = state.Pods.Where(p => p.Node == node).ToList();
        var bare = pods.Where(p => p.Owner is null).ToList();
        if (bare.Count > 0 && !force)
        {
            await CordonAsync(state, node, true, output, cancellationToken).ConfigureAwait(false);
            throw new LabException($"cannot delete Pods that declare no controller (use --force to override): {string.Join(", ", bare.Select(p => p.Namespace + "/" + p.Name))}");
        }

        await CordonAsync(state, node, true, output, cancellationToken).ConfigureAwait(false);
        foreach (var p in pods)
        {
            await output.WriteLineAsync($"evicting pod {p.Namespace}/{p.Name}").ConfigureAwait(false);
        }

        if (pods.Count > 0)
        {
            // As a ReplicaSet does for terminating pods: the replacements start while the leaving pods still serve.
            var leaving = pods.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
            var before = state.Pods.Select(p => p.Name).Concat(state.Pending.Select(p => p.Name)).ToHashSet(StringComparer.Ordinal);
            var marked = false;
            try
            {
                await LabDeploymentController.ReconcileAsync(state, output, leaving, cancellationToken).ConfigureAwait(false);
                var replacements = state.Pods.Where(p => !before.Contains(p.Name)).ToList();
                await LabEndpointReadiness.WaitAppliedAsync(state, [.. pods, .. replacements], "the replacement pods' endpoints", cancellationToken).ConfigureAwait(false);
                marked = true;
                await LabEndpointReadiness.SetReadyAsync(state, pods, ready: false, cancellationToken).ConfigureAwait(false);
                await LabEndpointReadiness.WaitAppliedAsync(state, pods, $"the endpoints of {node}'s pods marked not ready", cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is LabException or OperationCanceledException)
            {
                // Nothing half-done: the leaving pods serve again and the replacements made for them go.
                if (marked)
                {
                    await LabEndpointReadiness.SetReadyAsync(state, pods, ready: true, CancellationToken.None).ConfigureAwait(false);
                }

                state.Refresh();
                state.Change(c => c.Pending.RemoveAll(p => !before.Contains(p.Name)));
                foreach (var extra in state.Pods.Where(p => !before.Contains(p.Name)).ToList())
                {
                    LabPods.DeletePod(state, extra.Name, extra.Namespace);
                    await output.WriteLineAsync($"pod/{extra.Name} deleted (drain of {node} abandoned)").ConfigureAwait(false);
                }

                throw;
            }

            foreach (var p in pods)
            {
                LabPods.DeletePod(state, p.Name, p.Namespace);
                await output.WriteLineAsync($"pod/{p.Name} evicted").ConfigureAwait(false);
            }
        }

        await output.WriteLineAsync($"node/{node} drained").ConfigureAwait(false);
        await LabDeploymentController.ReconcileAsync(state, output, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>kubectl label node: sets and removes the node's labels in the store, where NodeConfig nodeSelectors match them.</summary>
    internal static async Task LabelAsync(LabState state, string node, LabelChanges changes, TextWriter output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentNullException.ThrowIfNull(output);
        _ = state.Node(node);
        var changed = await UpdateNodeAsync(state, node, n => n with { Labels = changes.ApplyTo(n.Labels) }, cancellationToken).ConfigureAwait(false);
        await output.WriteLineAsync($"node/{node} {(changed ? "labeled" : "not labeled")}").ConfigureAwait(false);
    }

    /// <summary>kubeadm's node labels (hostname, os, the control plane's role) and the control plane's NoSchedule taint.</summary>
    internal static async Task LabelNodesAsync(LabState state, CancellationToken cancellationToken)
    {
        for (var i = 0; i < state.Nodes.Count; i++)
        {
            var control = i == 0;
            await UpdateNodeAsync(state, state.Nodes[i].Name, n =>
            {
                var labels = new Dictionary<string, string>(n.Labels, StringComparer.Ordinal)
                {
                    [Scheduler.HostnameLabel] = n.Name,
                    ["kubernetes.io/os"] = "linux",
                };
                if (control)
                {
                    labels["node-role.kubernetes.io/control-plane"] = "";
                }

                var taints = control && !n.Taints.Any(t => t.Key == Lab.ControlPlaneTaint.Key) ? [.. n.Taints, Lab.ControlPlaneTaint] : n.Taints;
                return n with { Labels = labels, Taints = taints };
            }, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Compare-and-swap update of a Node object (the agent keeps what others set on it). True if it changed.</summary>
    internal static async Task<bool> UpdateNodeAsync(LabState state, string node, Func<Node, Node> change, CancellationToken cancellationToken)
    {
        var store = await LabStore.OpenStoreAsync(state, cancellationToken).ConfigureAwait(false);
        await using (store.ConfigureAwait(false))
        {
            var changed = false;
            try
            {
                var updated = await store.UpdateAsync(Kinds.Node, node, n =>
                {
                    var u = change(n);
                    changed = JsonSerializer.Serialize(u, Kinds.Node.TypeInfo) != JsonSerializer.Serialize(n, Kinds.Node.TypeInfo);
                    return u;
                }, cancellationToken).ConfigureAwait(false);
                return updated is null ? throw new LabException($"node {node} is not registered in the store (is its agent running?)") : changed;
            }
            catch (InvalidOperationException)
            {
                throw new LabException($"could not update node {node}: the store kept changing under it");
            }
        }
    }
}
