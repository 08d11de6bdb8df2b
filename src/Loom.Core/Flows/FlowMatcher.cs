namespace Loom.Core.Flows;

/// <summary>
/// Hubble's filter semantics: within a <see cref="FlowFilter"/> every field that is set must match (AND), a field's
/// list matches when any entry does (OR); a query keeps what its Include matches and its Exclude does not.
/// </summary>
public static class FlowMatcher
{
    /// <summary>The flows of <paramref name="flows"/> (oldest first) that <paramref name="query"/> asks for, oldest first.</summary>
    public static List<Flow> Select(IEnumerable<Flow> flows, FlowQuery query)
    {
        var matching = flows.Where(f => Matches(f, query)).ToList();
        return query.Last > 0 && matching.Count > query.Last ? matching[^query.Last..] : matching;
    }

    public static bool Matches(Flow flow, FlowQuery query) =>
        flow.Seq > query.AfterSeq
        && (query.Since is not { } since || flow.Time >= since)
        && Matches(flow, query.Include)
        && (query.Exclude is not { } exclude || IsEmpty(exclude) || !Matches(flow, exclude));

    /// <summary>True when every field set in <paramref name="filter"/> matches (an empty filter matches every flow).</summary>
    public static bool Matches(Flow flow, FlowFilter filter) =>
        Any(filter.Pods, p => IsPod(flow.Source, p) || IsPod(flow.Destination, p))
        && Any(filter.FromPods, p => IsPod(flow.Source, p))
        && Any(filter.ToPods, p => IsPod(flow.Destination, p))
        && Any(filter.Namespaces, n => flow.Source.Namespace == n || flow.Destination.Namespace == n)
        && Any(filter.Verdicts, v => Same(flow.Verdict, v))
        && Any(filter.DropReasons, r => Same(flow.DropReason, r))
        && Any(filter.Protocols, p => Same(flow.Protocol, p))
        && Any(filter.Ports, p => flow.Source.Port == p || flow.Destination.Port == p)
        && Any(filter.ToServices, s => flow.DestinationService is { } svc && PodKey(s) is var (ns, prefix) && svc.Namespace == ns
            && svc.Name.StartsWith(prefix, StringComparison.Ordinal)) // a name prefix, as Hubble
        && Any(filter.Nodes, n => flow.Node == n)
        && Any(filter.Types, t => Same(flow.Type, t));

    /// <summary>
    /// A query as decoded from JSON with every absent list empty (the source-generated reader leaves init-only members
    /// it did not find null); a negative Last or AfterSeq is a JsonException-worthy mistake reported by the caller.
    /// </summary>
    public static FlowQuery Normalize(FlowQuery q)
    {
        if (q.Last < 0 || q.AfterSeq < 0)
        {
            throw new System.Text.Json.JsonException("flows: last and afterSeq cannot be negative");
        }

        return q with { Include = Normalize(q.Include), Exclude = q.Exclude is null ? null : Normalize(q.Exclude) };
    }

    private static FlowFilter Normalize(FlowFilter? f) => f is null ? new FlowFilter() : f with
    {
        Pods = f.Pods ?? [], FromPods = f.FromPods ?? [], ToPods = f.ToPods ?? [], Namespaces = f.Namespaces ?? [], Verdicts = f.Verdicts ?? [],
        DropReasons = f.DropReasons ?? [], Protocols = f.Protocols ?? [], Ports = f.Ports ?? [], ToServices = f.ToServices ?? [], Nodes = f.Nodes ?? [],
        Types = f.Types ?? [],
    };

    public static bool IsEmpty(FlowFilter f) =>
        f.Pods.Count + f.FromPods.Count + f.ToPods.Count + f.Namespaces.Count + f.Verdicts.Count + f.DropReasons.Count + f.Protocols.Count
        + f.Ports.Count + f.ToServices.Count + f.Nodes.Count + f.Types.Count == 0;

    /// <summary>
    /// As Hubble's <c>--pod</c>: "namespace/prefix" (a bare prefix is in the default namespace) matches the pods of that
    /// namespace whose name starts with the prefix, so a Deployment's name finds its pods.
    /// </summary>
    public static bool IsPod(FlowPeer peer, string filter)
    {
        var (ns, prefix) = PodKey(filter);
        return peer.Pod is { } pod && peer.Namespace == ns && pod.StartsWith(prefix, StringComparison.Ordinal);
    }

    private static (string Namespace, string Name) PodKey(string value)
    {
        var slash = value.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? ("default", value) : (value[..slash], value[(slash + 1)..]);
    }

    private static bool Any<T>(IReadOnlyList<T> wanted, Func<T, bool> match) => wanted.Count == 0 || wanted.Any(match);

    private static bool Same(string? a, string b) => string.Equals(a, b, StringComparison.OrdinalIgnoreCase);
}
