using System.Globalization;
using System.Text.RegularExpressions;
using Loom.Core.AgentApi;
using Loom.Core.Model;
using Loom.Core.Selection;
using Loom.Core.Store;
using Loom.Datapath.Services;

namespace Loom.Lab;

/// <summary>
/// What a graceful drain needs: pods' endpoints marked not ready (a terminating pod's, in Kubernetes), and the wait
/// until every running agent balances the Services that select given pods exactly as the store says.
/// </summary>
internal static partial class LabEndpointReadiness
{
    /// <summary>How long the agents get to apply an endpoint change before the drain gives up.</summary>
    internal static readonly TimeSpan ApplyTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Sets Ready on the pods' endpoints (key namespace/name); a pod without one (no agent registered it) is skipped.</summary>
    internal static async Task SetReadyAsync(LabState state, IEnumerable<LabPod> pods, bool ready, CancellationToken cancellationToken)
    {
        var store = await LabStore.OpenStoreAsync(state, cancellationToken).ConfigureAwait(false);
        await using (store.ConfigureAwait(false))
        {
            foreach (var pod in pods)
            {
                try
                {
                    await store.UpdateAsync(Kinds.Endpoint, ObjectKey.Of(pod.Namespace, pod.Name),
                        e => e.Ready == ready ? e : e with { Ready = ready }, cancellationToken).ConfigureAwait(false);
                }
                catch (InvalidOperationException)
                {
                    throw new LabException($"could not mark the endpoint of pod {pod.Namespace}/{pod.Name} {(ready ? "ready" : "not ready")}: the store kept changing under it");
                }
            }
        }
    }

    /// <summary>
    /// Waits until every node whose agent runs has programmed the Services selecting any of <paramref name="pods"/>
    /// with exactly the backends the store's ready endpoints give (and nothing left pending in its reconciler);
    /// a LabException naming the first node behind after <see cref="ApplyTimeout"/>.
    /// </summary>
    internal static async Task WaitAppliedAsync(LabState state, IReadOnlyCollection<LabPod> pods, string what, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + ApplyTimeout;
        while (true)
        {
            var behind = await FirstBehindAsync(state, pods, cancellationToken).ConfigureAwait(false);
            if (behind is null)
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new LabException(string.Create(CultureInfo.InvariantCulture, $"{what}: not applied by every node after {ApplyTimeout.TotalSeconds:0} s: {behind}"));
            }

            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Why some running agent is not caught up yet, or null when all are.</summary>
    private static async Task<string?> FirstBehindAsync(LabState state, IReadOnlyCollection<LabPod> pods, CancellationToken cancellationToken)
    {
        var expected = await ExpectedAsync(state, pods, cancellationToken).ConfigureAwait(false);
        if (expected.Count == 0)
        {
            return null;
        }

        foreach (var node in state.Nodes.Where(n => n.AgentPid is { } pid && LabProcesses.IsAlive(pid)))
        {
            var (services, error) = await LabAgents.AskAsync(state, node.Name, "services", TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false);
            var (status, statusError) = services is null ? (null, null) : await LabAgents.AskAsync(state, node.Name, "status", TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false);
            if (services is null || status is null)
            {
                return error ?? statusError;
            }

            var programmed = (services.Services ?? []).ToDictionary(PortKey, s => s.Endpoints.Order(StringComparer.Ordinal).ToList(), StringComparer.Ordinal);
            foreach (var (key, backends) in expected)
            {
                var has = programmed.GetValueOrDefault(key) ?? [];
                if (!has.SequenceEqual(backends, StringComparer.Ordinal))
                {
                    return $"{node.Name} balances {key} to [{string.Join(", ", has)}], the store says [{string.Join(", ", backends)}]";
                }
            }

            // The table above is what the reconciler was given; its rows are written once none is pending.
            var summary = status.Status?.Controllers.FirstOrDefault(c => c.Name == "services")?.Summary ?? "";
            if (PendingRows().Match(summary) is { Success: true } m && m.Groups[1].Value != "0")
            {
                return $"{node.Name} has service rows not written yet ({summary})";
            }
        }

        return null;
    }

    /// <summary>The backends ("ip:port", ordered) of each port of every Service selecting one of the pods, from the store.</summary>
    private static async Task<Dictionary<string, List<string>>> ExpectedAsync(LabState state, IReadOnlyCollection<LabPod> pods, CancellationToken cancellationToken)
    {
        var store = await LabStore.OpenStoreAsync(state, cancellationToken).ConfigureAwait(false);
        await using (store.ConfigureAwait(false))
        {
            var (services, _) = await store.ListValidAsync(Kinds.Service, (_, _) => { }, cancellationToken).ConfigureAwait(false);
            var selecting = services.Select(s => s.Value)
                .Where(s => pods.Any(p => p.Namespace == s.Namespace && LabelSelector.ForService(s.Selector).Matches(p.Labels)))
                .ToList();
            if (selecting.Count == 0)
            {
                return [];
            }

            var (endpoints, _) = await store.ListValidAsync(Kinds.Endpoint, (_, _) => { }, cancellationToken).ConfigureAwait(false);
            return ServiceModel.Compute(selecting, endpoints.Select(e => e.Value)).ToDictionary(
                p => PortKey(p.Name.Namespace, p.Name.Name, p.Name.Port, p.Frontend.Protocol.ToString().ToUpperInvariant()),
                p => p.Backends.Select(b => $"{b.Address}:{b.Port}").Order(StringComparer.Ordinal).ToList(),
                StringComparer.Ordinal);
        }
    }

    private static string PortKey(ServiceInfo s) => PortKey(s.Namespace, s.Name, s.PortName, s.Protocol);

    private static string PortKey(string ns, string name, string? port, string protocol) => $"{ns}/{name}:{port ?? ""}/{protocol}";

    [GeneratedRegex(@"; (\d+) pending")]
    private static partial Regex PendingRows();
}
