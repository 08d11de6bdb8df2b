namespace Loom.Core.Flows;

/// <summary>
/// One flow as the agent serves it: a <see cref="FlowEvent"/> with names (Hubble's flow, in short). Strings are the
/// values the CLI prints and filters on, so `loom observe -o json` and the filters speak the same words.
/// </summary>
public sealed record Flow
{
    /// <summary>The agent's sequence number (grows by one per flow kept; <see cref="FlowQuery.AfterSeq"/> follows it).</summary>
    public long Seq { get; init; }

    public DateTimeOffset Time { get; init; }

    /// <summary>The node whose datapath saw it.</summary>
    public string Node { get; init; } = "";

    /// <summary><c>trace</c>, <c>drop</c>, <c>policy-verdict</c> or <c>translation</c>.</summary>
    public string Type { get; init; } = "";

    /// <summary><c>FORWARDED</c>, <c>DROPPED</c> or <c>TRANSLATED</c> (Hubble's verdicts).</summary>
    public string Verdict { get; init; } = "";

    /// <summary>For drops: Hubble's name of the reason, e.g. <c>POLICY_DENIED</c>; null otherwise.</summary>
    public string? DropReason { get; init; }

    /// <summary><c>from-endpoint</c>, <c>to-endpoint</c>, <c>to-stack</c>, <c>to-overlay</c>, <c>from-overlay</c>,
    /// <c>to-network</c>, <c>from-network</c>, <c>socket</c>.</summary>
    public string ObservationPoint { get; init; } = "";

    /// <summary><c>ingress</c> or <c>egress</c> of the local endpoint, where known (policy verdicts, drops).</summary>
    public string? TrafficDirection { get; init; }

    public bool IsReply { get; init; }

    /// <summary><c>TCP</c>, <c>UDP</c>, <c>ICMP</c>, <c>SCTP</c> or the number.</summary>
    public string Protocol { get; init; } = "";

    /// <summary>TCP flags as Hubble prints them: <c>SYN</c>, <c>SYN, ACK</c>, <c>ACK, FIN</c>; null for other protocols.</summary>
    public string? TcpFlags { get; init; }

    public FlowPeer Source { get; init; } = new();

    public FlowPeer Destination { get; init; } = new();

    /// <summary>The Service the destination (or, for a translation, the original destination) belongs to.</summary>
    public FlowService? DestinationService { get; init; }

    /// <summary>For a translation: the frontend "ip:port" the packet was sent to.</summary>
    public string? OriginalDestination { get; init; }

    /// <summary>The device the program ran on, by name where the agent knows it.</summary>
    public string? Interface { get; init; }

    /// <summary>For policy verdicts: the matching identity or rule as the agent can name it; null when unknown.</summary>
    public string? PolicyMatch { get; init; }
}

/// <summary>One side of a flow.</summary>
public sealed record FlowPeer
{
    public string Ip { get; init; } = "";

    public int Port { get; init; }

    /// <summary>The security identity (1 host, 2 world, 6 remote-node, 256.. pods); 0 unknown.</summary>
    public uint Identity { get; init; }

    public string? Namespace { get; init; }

    public string? Pod { get; init; }

    /// <summary>The node of the pod, or the node the address belongs to.</summary>
    public string? Node { get; init; }

    /// <summary>Labels in Cilium's form (<c>k8s:app=curl</c>) or reserved ones (<c>reserved:world</c>).</summary>
    public IReadOnlyList<string> Labels { get; init; } = [];
}

public sealed record FlowService(string Namespace, string Name);

/// <summary>
/// What to return: the flows matching <see cref="Include"/> (every field that is set must match; a list matches when
/// any entry does) and not matching <see cref="Exclude"/>, after <see cref="Since"/> and <see cref="AfterSeq"/>, the
/// last <see cref="Last"/> of them (oldest first).
/// </summary>
public sealed record FlowQuery
{
    public FlowFilter Include { get; init; } = new();

    public FlowFilter? Exclude { get; init; }

    public DateTimeOffset? Since { get; init; }

    /// <summary>Only flows with a larger <see cref="Flow.Seq"/> (following).</summary>
    public long AfterSeq { get; init; }

    /// <summary>
    /// At most this many (the newest); 0 (and absent from the JSON) for all that match: the source-generated reader
    /// would not keep an initializer's default, so there is none; <c>loom observe</c> always sends its own (20 by default).
    /// </summary>
    public int Last { get; init; }
}

/// <summary>The filters of <c>loom observe</c>; pods are "namespace/name" (or "name" for the default namespace).</summary>
public sealed record FlowFilter
{
    /// <summary>Either side is one of these pods.</summary>
    public IReadOnlyList<string> Pods { get; init; } = [];

    public IReadOnlyList<string> FromPods { get; init; } = [];

    public IReadOnlyList<string> ToPods { get; init; } = [];

    /// <summary>Either side is in one of these namespaces.</summary>
    public IReadOnlyList<string> Namespaces { get; init; } = [];

    /// <summary>FORWARDED, DROPPED, TRANSLATED.</summary>
    public IReadOnlyList<string> Verdicts { get; init; } = [];

    public IReadOnlyList<string> DropReasons { get; init; } = [];

    public IReadOnlyList<string> Protocols { get; init; } = [];

    /// <summary>Either side's port.</summary>
    public IReadOnlyList<int> Ports { get; init; } = [];

    /// <summary>"namespace/name" of the destination's Service.</summary>
    public IReadOnlyList<string> ToServices { get; init; } = [];

    public IReadOnlyList<string> Nodes { get; init; } = [];

    /// <summary>trace, drop, policy-verdict, translation.</summary>
    public IReadOnlyList<string> Types { get; init; } = [];
}
