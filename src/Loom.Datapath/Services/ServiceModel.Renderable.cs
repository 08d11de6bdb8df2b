using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Loom.Core.Model;
using Loom.Core.Validation;

namespace Loom.Datapath.Services;

public static partial class ServiceModel
{
    /// <summary>
    /// The ports a backend can program, in the order every backend renders them (name, then protocol), whatever it was
    /// given: a port with a non-IPv4 or out-of-range frontend or backend, or an unknown protocol, is left out; of two
    /// ports with one chain name, or one frontend (ClusterIP, protocol, port), the first in that order wins and the other
    /// is left out; of two ports with one node port and protocol, the first keeps it and the other is programmed without
    /// it; a ClientIP timeout outside 1..86400 s is clamped. Each such decision adds one printable line to
    /// <paramref name="skipped"/>. The renderers apply it too, so nothing the store holds can fail a sync for every service.
    /// </summary>
    public static IReadOnlyList<ServicePortState> Renderable(IEnumerable<ServicePortState> states, ICollection<ServiceSkip>? skipped)
    {
        ArgumentNullException.ThrowIfNull(states);
        var ordered = states.Select(s => (Key: s.Name.ToString() + "/" + (Enum.IsDefined(s.Frontend.Protocol) ? s.Frontend.ProtocolName : "?"), State: s))
            .OrderBy(x => x.Key, StringComparer.Ordinal)
            .ToList();
        var result = new List<ServicePortState>(ordered.Count);
        var names = new HashSet<string>(StringComparer.Ordinal);
        var frontends = new Dictionary<(string, Protocol, int), ServicePortName>();
        var nodePorts = new Dictionary<(Protocol, int), ServicePortName>();
        foreach (var (key, state) in ordered)
        {
            var s = state;
            var (code, why) = Unrenderable(s) is { } bad ? ("unrenderable", bad) : (null, null);
            if (why is null && !names.Add(key))
            {
                (code, why) = ("duplicate-name", "another port has the same service, port name and protocol");
            }

            if (why is null && !frontends.TryAdd((s.Frontend.Address.ToString(), s.Frontend.Protocol, s.Frontend.Port), s.Name))
            {
                (code, why) = ("duplicate-frontend", $"frontend {s.Frontend} is already taken by {frontends[(s.Frontend.Address.ToString(), s.Frontend.Protocol, s.Frontend.Port)]}");
            }

            if (why is not null)
            {
                skipped?.Add(Reason(s, code!, "skipped: " + why));
                continue;
            }

            if (DropDuplicateNodePort(ref s, nodePorts) is { } duplicate)
            {
                skipped?.Add(duplicate);
            }

            if (ClampAffinity(ref s) is { } clamped)
            {
                skipped?.Add(clamped);
            }

            result.Add(s);
        }

        return result;
    }

    /// <summary>
    /// A node port (with its protocol) another port already took, taken off <paramref name="s"/> (the port is still
    /// served on its ClusterIP); returns the reason, or null if the node port was free and is now taken by <paramref name="s"/>.
    /// </summary>
    internal static ServiceSkip? DropDuplicateNodePort(ref ServicePortState s, Dictionary<(Protocol, int), ServicePortName> taken)
    {
        if (s.NodePort == 0 || taken.TryAdd((s.Frontend.Protocol, s.NodePort), s.Name))
        {
            return null;
        }

        var reason = DuplicateNodePort(s, taken[(s.Frontend.Protocol, s.NodePort)]);
        s = s with { NodePort = 0 };
        return reason;
    }

    internal static ServiceSkip DuplicateNodePort(ServicePortState s, ServicePortName owner) =>
        Reason(s, "duplicate-nodeport", string.Create(CultureInfo.InvariantCulture, $"node port {s.NodePort}/{s.Frontend.ProtocolName} skipped: already taken by {owner}"));

    /// <summary>A ClientIP timeout outside 1..86400 s clamped into it; returns the reason, or null if it was in range.</summary>
    internal static ServiceSkip? ClampAffinity(ref ServicePortState s)
    {
        if (s.SessionAffinity != SessionAffinity.ClientIP || s.AffinityTimeoutSeconds is >= 1 and <= ServiceValidation.MaxAffinityTimeoutSeconds)
        {
            return null;
        }

        var clamped = Math.Clamp(s.AffinityTimeoutSeconds, 1, ServiceValidation.MaxAffinityTimeoutSeconds);
        var reason = Reason(s, "affinity-clamped", string.Create(CultureInfo.InvariantCulture, $"affinity timeout {s.AffinityTimeoutSeconds}s clamped to {clamped}s"));
        s = s with { AffinityTimeoutSeconds = clamped };
        return reason;
    }

    internal static string? Unrenderable(ServicePortState s)
    {
        if (!Enum.IsDefined(s.Frontend.Protocol))
        {
            return $"protocol {s.Frontend.Protocol} is neither TCP nor UDP";
        }

        if (!Enum.IsDefined(s.SessionAffinity))
        {
            return $"session affinity {s.SessionAffinity} is neither None nor ClientIP";
        }

        if (s.Frontend.Address.AddressFamily != AddressFamily.InterNetwork || s.Frontend.Port is < 1 or > 65535)
        {
            return $"frontend {s.Frontend} is not an IPv4 address and a port 1-65535";
        }

        if (s.NodePort is < 0 or > 65535 || s.HealthCheckNodePort is < 0 or > 65535)
        {
            return string.Create(CultureInfo.InvariantCulture, $"node port {s.NodePort} or health-check node port {s.HealthCheckNodePort} is not 0-65535");
        }

        // A stored list may hold a JSON null whatever the type says.
        var badIp = s.ExternalIps.Select(ip => (IPAddress?)ip).FirstOrDefault(ip => ip is null || ip.AddressFamily != AddressFamily.InterNetwork, IPAddress.None);
        if (!ReferenceEquals(badIp, IPAddress.None))
        {
            return $"external IP {badIp?.ToString() ?? "null"} is not an IPv4 address";
        }

        return s.Backends.FirstOrDefault(b => b.Address.AddressFamily != AddressFamily.InterNetwork || b.Port is < 1 or > 65535) is { } bad
            ? $"backend {bad} is not an IPv4 address and a port 1-65535"
            : null;
    }

    // One line of printable ASCII, whatever the name holds, so it can go to a log or a script comment as it is.
    internal static ServiceSkip Reason(ServicePortState s, string code, string why) => new(
        RuleText.Printable($"{s.Name.Namespace}/{s.Name.Name}", 256),
        code,
        RuleText.Printable($"{s.Name} ({(Enum.IsDefined(s.Frontend.Protocol) ? s.Frontend.ToString() : s.Frontend.Address.ToString())}): {why}", 1024));
}
