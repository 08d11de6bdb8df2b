using System.Globalization;
using System.Text.Json;
using Loom.Core.AgentApi;

namespace Loom.Core.Flows;

/// <summary>How <c>loom observe</c> prints a flow: Hubble's compact line, a table row, or one JSON object per line.</summary>
public static class FlowFormat
{
    public static readonly IReadOnlyList<string> TableHeader = ["TIMESTAMP", "NODE", "SOURCE", "DESTINATION", "TYPE", "VERDICT", "SUMMARY"];

    /// <summary>
    /// <c>TIME NODE: SRC:PORT (identity) -> DST:PORT (identity) obs-point VERDICT (TCP Flags: SYN)</c>; a reply is printed
    /// from its connection's client, as Hubble does: <c>CLIENT &lt;- SERVER</c>.
    /// </summary>
    public static string Compact(Flow f)
    {
        var (left, right, arrow) = f.IsReply ? (f.Destination, f.Source, "<-") : (f.Source, f.Destination, "->");
        return $"{Time(f.Time)} {f.Node}: {Peer(left)} ({FlowNames.Identity(left.Identity)}) {arrow} {Peer(right)} ({FlowNames.Identity(right.Identity)}) {Event(f)} {Summary(f)}";
    }

    public static IReadOnlyList<string> TableRow(Flow f) =>
        [Time(f.Time), f.Node, Peer(f.Source), Peer(f.Destination), Event(f), f.Verdict, Summary(f)];

    /// <summary>One line of JSON (the agent API's field names).</summary>
    public static string Json(Flow f) => JsonSerializer.Serialize(f, AgentApiJsonContext.Default.Flow);

    /// <summary>Hubble's stamp: "Nov 30 12:46:29.123" (in the offset the time carries).</summary>
    public static string Time(DateTimeOffset t) => t.ToString("MMM d HH:mm:ss.fff", CultureInfo.InvariantCulture);

    /// <summary>A pod as "namespace/pod:port", anything else as "ip:port"; no port for ICMP and the like; "socket" for
    /// the unnamed client of a socket program's translation.</summary>
    public static string Peer(FlowPeer p)
    {
        var name = p.Pod is { } pod ? $"{p.Namespace}/{pod}" : p.Ip is { Length: > 0 } ip ? ip : "socket";
        return p.Port == 0 ? name : $"{name}:{p.Port.ToString(CultureInfo.InvariantCulture)}";
    }

    /// <summary>What happened where: the observation point, a policy verdict's direction, a translation's frontend.</summary>
    private static string Event(Flow f) => f.Type switch
    {
        "policy-verdict" => $"policy-verdict:{(f.TrafficDirection ?? "unknown").ToUpperInvariant()}",
        "translation" => $"{f.ObservationPoint} translated from {f.OriginalDestination}{(f.DestinationService is { } s ? $" (service {s.Namespace}/{s.Name})" : "")}",
        _ => f.ObservationPoint,
    };

    private static string Summary(Flow f)
    {
        var verdict = f.DropReason is { } reason ? $"{f.Verdict} {reason}" : f.Verdict;
        var proto = f.TcpFlags is { } flags ? $"TCP Flags: {flags}" : f.Protocol;
        return $"{verdict} ({proto})";
    }
}
