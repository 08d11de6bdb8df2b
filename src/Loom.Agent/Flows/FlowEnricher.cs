using System.Net;
using Loom.Core.Flows;
using Loom.Datapath.Policy;

namespace Loom.Agent.Flows;

/// <summary>A datapath event as a <see cref="Flow"/>: Hubble's words for what happened, names for both sides.</summary>
internal static class FlowEnricher
{
    public static Flow Enrich(FlowEvent e, string node, DateTimeOffset time, FlowDirectory names)
    {
        var proto = FlowNames.Protocol(e.Protocol);
        var translated = e.OriginalDestination is { } orig ? $"{orig}:{e.OriginalDestinationPort}" : null;
        var allowed = e.Flags.HasFlag(FlowEventMarks.Allowed);
        var policyDrop = e.DropReason is DropReason.PolicyDenied or DropReason.PolicyDeniedDeferred;
        return new Flow
        {
            Time = time,
            Node = node,
            Type = FlowNames.Type(e.Type),
            Verdict = e.Type switch
            {
                FlowEventType.Drop => FlowNames.Dropped,
                FlowEventType.Policy when !allowed => FlowNames.Dropped,
                FlowEventType.Translation => FlowNames.Translated,
                _ => FlowNames.Forwarded,
            },
            DropReason = e.Type switch
            {
                FlowEventType.Drop => FlowNames.Drop(e.Reason),
                FlowEventType.Policy when !allowed => FlowNames.Drop((byte)DropReason.PolicyDenied),
                _ => null,
            },
            ObservationPoint = FlowNames.Point(e.Point),
            TrafficDirection = e.Type == FlowEventType.Policy || policyDrop
                ? (e.Flags.HasFlag(FlowEventMarks.Egress) ? "egress" : "ingress")
                : e.Point switch
                {
                    ObservationPoint.FromEndpoint => "egress",
                    ObservationPoint.ToEndpoint => "ingress",
                    _ => null,
                },
            IsReply = e.Flags.HasFlag(FlowEventMarks.Reply),
            Protocol = proto,
            TcpFlags = e.Protocol == 6 ? FlowNames.TcpFlags(e.TcpFlags) : null,
            // A socket program translates at connect(), before the socket has an address: no source to name.
            Source = e.Point == ObservationPoint.Socket && e.Source.Equals(IPAddress.Any) ? new FlowPeer() : names.Peer(e.Source, e.SourcePort, e.SourceIdentity),
            Destination = names.Peer(e.Destination, e.DestinationPort, e.DestinationIdentity),
            DestinationService = e.OriginalDestination is { } frontend
                ? names.Service(frontend, e.OriginalDestinationPort, proto)
                : names.Service(e.Destination, e.DestinationPort, proto),
            OriginalDestination = translated,
            Interface = names.Interface(e.Ifindex),
            PolicyMatch = e.Type == FlowEventType.Policy ? PolicyMatch(e) : null,
        };
    }

    /// <summary>How the policy program decided (its pol_stats reason) and the identity it judged the peer as.</summary>
    private static string PolicyMatch(FlowEvent e)
    {
        var peer = e.Flags.HasFlag(FlowEventMarks.Egress) ? e.DestinationIdentity : e.SourceIdentity;
        var reason = Enum.IsDefined((PolicyReason)e.Reason) ? ((PolicyReason)e.Reason).ToString() : $"reason {e.Reason}";
        return $"{reason}, peer {FlowNames.Identity(peer)}";
    }

    /// <summary>The wall-clock time of a CLOCK_MONOTONIC stamp (the programs' bpf_ktime_get_ns), given both clocks now.</summary>
    public static DateTimeOffset WallTime(ulong ktimeNs, long monotonicNowNs, DateTimeOffset wallNow) =>
        wallNow - TimeSpan.FromTicks(Math.Max(0, monotonicNowNs - (long)ktimeNs) / 100);
}
