using System.Diagnostics;
using Loom.Core.AgentApi;
using Loom.Core.Flows;

namespace Loom.Lab.Connectivity;

/// <summary>
/// The flow log's view of each action (test <c>no-unexpected-drops</c>): every node's agent is asked for the drops
/// in the test's namespace seen since the action began. An action expected to connect must show no DROPPED flow
/// between its pods; one expected to be denied must show a POLICY_DENIED drop between them.
/// </summary>
internal sealed class ConnectivityFlows
{
    /// <summary>How long a denied action's POLICY_DENIED drop may take to reach its agent's flow ring.</summary>
    private static readonly TimeSpan DenyWithin = TimeSpan.FromSeconds(2);

    /// <summary>How long after a connection a drop of it would have arrived: the agents read their ring buffer continuously.</summary>
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(250);

    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(5);

    public const string FlowLog = "flow log";

    private readonly LabState _state;

    private ConnectivityFlows(LabState state) => _state = state;

    /// <summary>The flow log of every node, or why it cannot be read (an agent with flow events off, or not answering).</summary>
    public static async Task<(ConnectivityFlows? Flows, string? Unavailable)> OpenAsync(LabState state, CancellationToken ct)
    {
        var flows = new ConnectivityFlows(state);
        var (_, error) = await flows.MarkAsync(ct).ConfigureAwait(false);
        return error is null ? (flows, null) : (null, error);
    }

    /// <summary>Every node's newest flow sequence number: where an action's flows begin.</summary>
    public async Task<(Dictionary<string, long> Seq, string? Error)> MarkAsync(CancellationToken ct)
    {
        var asks = _state.Nodes.Select(async n => (n.Name, Answer: await LabAgents.AskAsync(_state, n.Name,
            new AgentRequest { Op = "flows", Flows = new FlowQuery { Last = 1 } }, AskTimeout, ct).ConfigureAwait(false))).ToList();
        var seq = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (node, (response, error)) in await Task.WhenAll(asks).ConfigureAwait(false))
        {
            if (response is null)
            {
                return (seq, error);
            }

            seq[node] = response.Flows is { Count: > 0 } f ? f.Max(x => x.Seq) : 0;
        }

        return (seq, null);
    }

    /// <summary>What the flow log shows of <paramref name="action"/>, which ran after <paramref name="since"/>, as an action of its own.</summary>
    public async Task<ActionResult> CheckAsync(string test, ConnectivityAction action, Dictionary<string, long> since, CancellationToken ct)
    {
        var check = Check(test, action);
        var wait = Stopwatch.StartNew();
        while (true)
        {
            await Task.Delay(Settle, ct).ConfigureAwait(false);
            var (drops, error) = await DropsAsync(action, since, ct).ConfigureAwait(false);
            if (error is not null)
            {
                return new ActionResult(check, 1, error);
            }

            var denied = drops.Any(d => d.DropReason == "POLICY_DENIED");
            if (action.ExpectSuccess && drops.Count > 0)
            {
                return new ActionResult(check, 1, "unexpected drops:\n" + string.Join('\n', drops.Select(Line)));
            }

            if (action.ExpectSuccess || denied)
            {
                return new ActionResult(check, 0, "");
            }

            if (wait.Elapsed > DenyWithin)
            {
                return new ActionResult(check, 1, drops.Count == 0
                    ? "denied, but no node's flow log shows a drop between its pods"
                    : "denied, but no drop says POLICY_DENIED:\n" + string.Join('\n', drops.Select(Line)));
            }
        }
    }

    /// <summary>The flow log's check of an action, as an action of no-unexpected-drops: the command shows the drops.</summary>
    public static ConnectivityAction Check(string test, ConnectivityAction action) =>
        new($"{test}: {action.Name}: {(action.ExpectSuccess ? "no drop" : "dropped by policy")}", FlowLog,
            ["loom", "lab", "observe", "--namespace", ConnectivityDeployment.Namespace, "--verdict", "DROPPED", "-o", "compact"], true, []);

    private async Task<(List<Flow> Drops, string? Error)> DropsAsync(ConnectivityAction action, Dictionary<string, long> since, CancellationToken ct)
    {
        var query = new FlowQuery { Include = new FlowFilter { Namespaces = [ConnectivityDeployment.Namespace], Verdicts = ["DROPPED"] }, Last = 0 };
        var asks = _state.Nodes.Select(n => LabAgents.AskAsync(_state, n.Name,
            new AgentRequest { Op = "flows", Flows = query with { AfterSeq = since.GetValueOrDefault(n.Name) } }, AskTimeout, ct)).ToList();
        var drops = new List<Flow>();
        foreach (var (response, error) in await Task.WhenAll(asks).ConfigureAwait(false))
        {
            if (response is null)
            {
                return ([], error);
            }

            drops.AddRange((response.Flows ?? []).Where(f => Between(f, action.FlowPeers)));
        }

        return (drops, null);
    }

    /// <summary>
    /// A flow of the action: one side is one of its pods, and no side is another pod of the test's namespace (a
    /// Service's address or a node may be the other side).
    /// </summary>
    internal static bool Between(Flow flow, IReadOnlyList<string> peers)
    {
        static string? Key(FlowPeer p) => p.Pod is { } pod && p.Namespace is { } ns ? ns + "/" + pod : null;
        bool Ours(FlowPeer p) => Key(p) is { } k && peers.Contains(k, StringComparer.Ordinal);
        bool Other(FlowPeer p) => p.Namespace == ConnectivityDeployment.Namespace && !Ours(p);
        return (Ours(flow.Source) || Ours(flow.Destination)) && !Other(flow.Source) && !Other(flow.Destination);
    }

    private static string Line(Flow f) => FlowFormat.Compact(f);
}
