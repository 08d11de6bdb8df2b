using System.Diagnostics;
using Loom.Core.AgentApi;
using Loom.Core.Migration;

namespace Loom.Lab.Migration;

/// <summary>
/// Finalize's wait in the lab: after each step, until every node's agent reports it applied. Without it the steps
/// reach the nodes in any order (they are store writes a few milliseconds apart), and the order is what keeps
/// traffic flowing.
/// </summary>
public static class LabFinalizeWait
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    /// <summary>For <see cref="MigrationFinalize.RunAsync"/>'s converged hook: waits until every agent applied <paramref name="step"/>.</summary>
    public static Func<FinalizeStep, CancellationToken, Task> For(LabState state, ClusterMigration m) =>
        async (step, ct) =>
        {
            if (Applied(step, m) is { } applied)
            {
                await EveryAgentAsync(state, applied.What, applied.Ok, ct).ConfigureAwait(false);
            }
        };

    /// <summary>What every agent reports once it applied a finalize step; null for a step no agent shows.</summary>
    internal static (string What, Func<AgentStatus, bool> Ok)? Applied(FinalizeStep step, ClusterMigration m)
    {
        NetworkStatus? To(AgentStatus s) => s.Networks.FirstOrDefault(n => n.Name == m.To);
        return step switch
        {
            FinalizeStep.ServiceBackendEbpf => ("eBPF services", s => s.ServiceBackend == "ebpf"),
            FinalizeStep.NativeRouting => ($"native routing on {m.To}", s => To(s) is { Ready: true, RoutingMode: "native" }),
            FinalizeStep.MasqueradeBpf => ($"BPF masquerade on {m.To}", s => To(s) is { Masquerading: "BPF" }),
            FinalizeStep.HostRoutingBpf => ($"BPF host routing on {m.To}", s => To(s) is { HostRouting: "BPF" }),
            FinalizeStep.DeleteOldNetwork => ($"{m.From} removed", s => s.Networks.All(n => n.Name != m.From)),
            FinalizeStep.DefaultNetwork or FinalizeStep.DeleteNodeConfig or FinalizeStep.RemoveNodeLabels =>
                ($"{m.To} still the primary network", s => s.PrimaryNetwork == m.To && To(s) is { Ready: true, Primary: true }),
            _ => null,
        };
    }

    /// <summary>Until every node's agent answers a status that <paramref name="ok"/> accepts; how long that took.</summary>
    internal static async Task<TimeSpan> EveryAgentAsync(LabState state, string what, Func<AgentStatus, bool> ok, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        var waiting = state.Nodes.Select(n => n.Name).ToList();
        while (true)
        {
            foreach (var node in waiting.ToList())
            {
                if (await LabMigrationHost.AgentStatusAsync(state, node, ct).ConfigureAwait(false) is { } s && ok(s))
                {
                    waiting.Remove(node);
                }
            }

            if (waiting.Count == 0)
            {
                return sw.Elapsed;
            }

            if (sw.Elapsed > Timeout)
            {
                throw new LabException($"{string.Join(", ", waiting)}: not at {what} after {Timeout.TotalSeconds:0} s (see loom status --node {waiting[0]})");
            }

            await Task.Delay(200, ct).ConfigureAwait(false);
        }
    }
}
