using System.Globalization;
using Loom.Core.Policy;

namespace Loom.Core.Flows;

/// <summary>
/// The words flows are printed and filtered with, as Hubble spells them: verdicts, drop reasons, observation points,
/// event types, protocols, TCP flags and identities.
/// </summary>
public static class FlowNames
{
    public const string Forwarded = "FORWARDED";
    public const string Dropped = "DROPPED";
    public const string Translated = "TRANSLATED";

    public static readonly IReadOnlyList<string> Verdicts = [Forwarded, Dropped, Translated];

    public static readonly IReadOnlyList<string> Types = ["trace", "drop", "policy-verdict", "translation"];

    public static readonly IReadOnlyList<string> Protocols = ["TCP", "UDP", "ICMP", "SCTP"];

    /// <summary>Hubble's names (flow.proto DropReason) for the reasons Loom's programs give.</summary>
    private static readonly Dictionary<DropReason, string> DropNames = new()
    {
        [DropReason.Unroutable] = "UNKNOWN_L3_TARGET_ADDRESS",
        [DropReason.InvalidSource] = "INVALID_SOURCE_IP",
        [DropReason.PolicyDenied] = "POLICY_DENIED",
        [DropReason.InvalidPacket] = "INVALID_PACKET_DROPPED",
        [DropReason.UnsupportedL3] = "UNSUPPORTED_L3_PROTOCOL",
        [DropReason.CtMapFull] = "CT_MAP_INSERTION_FAILED",
        [DropReason.NoServiceBackend] = "SERVICE_BACKEND_NOT_FOUND",
        [DropReason.NatNoPort] = "NO_MAPPING_FOR_NAT_MASQUERADE",
        // Denied by a policy all the same (judged after kube-proxy's DNAT): one name, so --drop-reason POLICY_DENIED finds both.
        [DropReason.PolicyDeniedDeferred] = "POLICY_DENIED",
    };

    /// <summary>Every drop reason name a flow can carry (what <c>--drop-reason</c> accepts).</summary>
    public static IReadOnlyList<string> DropReasons { get; } = [.. DropNames.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];

    public static string Drop(byte reason) =>
        DropNames.TryGetValue((DropReason)reason, out var name) ? name : "DROP_REASON_" + reason.ToString(CultureInfo.InvariantCulture);

    public static string Point(ObservationPoint point) => point switch
    {
        ObservationPoint.FromEndpoint => "from-endpoint",
        ObservationPoint.ToEndpoint => "to-endpoint",
        ObservationPoint.ToStack => "to-stack",
        ObservationPoint.ToOverlay => "to-overlay",
        ObservationPoint.FromOverlay => "from-overlay",
        ObservationPoint.ToNetwork => "to-network",
        ObservationPoint.FromNetwork => "from-network",
        ObservationPoint.Socket => "socket",
        _ => "unknown",
    };

    public static string Type(FlowEventType type) => type switch
    {
        FlowEventType.Trace => "trace",
        FlowEventType.Drop => "drop",
        FlowEventType.Policy => "policy-verdict",
        FlowEventType.Translation => "translation",
        _ => "unknown",
    };

    public static string Protocol(byte protocol) => protocol switch
    {
        6 => "TCP",
        17 => "UDP",
        1 => "ICMP",
        132 => "SCTP",
        _ => protocol.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>The set flags in Hubble's order (SYN, ACK, RST, FIN, PSH, URG, ECE, CWR), e.g. "SYN, ACK"; null when none.</summary>
    public static string? TcpFlags(byte flags)
    {
        (byte Bit, string Name)[] order = [(0x02, "SYN"), (0x10, "ACK"), (0x04, "RST"), (0x01, "FIN"), (0x08, "PSH"), (0x20, "URG"), (0x40, "ECE"), (0x80, "CWR")];
        var set = order.Where(f => (flags & f.Bit) != 0).Select(f => f.Name).ToList();
        return set.Count == 0 ? null : string.Join(", ", set);
    }

    /// <summary>As Hubble prints an identity: a reserved one by name, another as <c>ID:n</c>.</summary>
    public static string Identity(uint identity) => identity switch
    {
        ReservedIdentity.Unknown => "unknown",
        ReservedIdentity.Host => "host",
        ReservedIdentity.World => "world",
        ReservedIdentity.RemoteNode => "remote-node",
        _ => "ID:" + identity.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>A reserved identity's label (<c>reserved:host</c>); null for others.</summary>
    public static string? ReservedLabel(uint identity) => identity switch
    {
        ReservedIdentity.Host => "reserved:host",
        ReservedIdentity.World => "reserved:world",
        ReservedIdentity.RemoteNode => "reserved:remote-node",
        _ => null,
    };

    /// <summary>The name as printed for <paramref name="value"/> among <paramref name="known"/> (case-insensitive); null when not one.</summary>
    public static string? Canonical(string value, IReadOnlyList<string> known) =>
        known.FirstOrDefault(k => string.Equals(k, value, StringComparison.OrdinalIgnoreCase));
}
