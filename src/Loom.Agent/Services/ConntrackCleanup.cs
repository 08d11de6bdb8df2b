using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Loom.Core.Model;
using Loom.Datapath.Services;
using Loom.Linux;

namespace Loom.Agent.Services;

/// <summary>
/// Which UDP conntrack entries one service frontend leaves stale: those whose original destination is the frontend
/// (<see cref="Destination"/>:<see cref="Port"/>; a null destination is a node port, on any local address) and, when
/// <see cref="Backend"/> is set, whose reply comes from that gone endpoint.
/// </summary>
internal sealed record ConntrackFilter(IPAddress? Destination, int Port, BackendAddress? Backend)
{
    public bool Matches(ConntrackFlow flow, IReadOnlySet<IPAddress> localAddresses) =>
        flow.Original.Protocol == ProtocolType.Udp
        && flow.Original.DestinationPort == Port
        && (Destination is null ? localAddresses.Contains(flow.Original.Destination) : flow.Original.Destination.Equals(Destination))
        && (Backend is null || (flow.Reply.Source.Equals(Backend.Address) && flow.Reply.SourcePort == Backend.Port));

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{(Destination is null ? "node port " : Destination + ":")}{Port}{(Backend is null ? "" : $" via {Backend.Address}:{Backend.Port}")}");
}

/// <summary>
/// kube-proxy's UDP conntrack cleanup (pkg/proxy/conntrack), run after each successful write on iptables and nftables.
/// UDP has no connection end, so a client that keeps its source port keeps its conntrack entry, and with it the DNAT to
/// an endpoint that is gone (or, while a Service had no endpoints, no DNAT at all): its packets would go nowhere until
/// the entry times out. Deleting the entry sends the next packet through the rules again, to a live endpoint.
/// </summary>
internal static class ConntrackCleanup
{
    private const int ENOENT = 2;

    /// <summary>
    /// The filters for one port's change from <paramref name="before"/> (what was programmed) to <paramref name="after"/>
    /// (null: removed): a gone endpoint's entries to every frontend still served; every entry to a frontend no longer
    /// served; and every entry to the frontends of a Service that had no endpoints and now has some.
    /// </summary>
    public static IEnumerable<ConntrackFilter> Plan(ServicePortState? before, ServicePortState? after)
    {
        var was = before is { Frontend.Protocol: Protocol.Udp } ? before : null;
        var now = after is { Frontend.Protocol: Protocol.Udp } ? after : null;
        var kept = now is null ? [] : Frontends(now).ToHashSet();
        if (was is not null)
        {
            var gone = was.Backends.Select(Key).Except(now?.Backends.Select(Key) ?? []).ToList();
            foreach (var f in Frontends(was))
            {
                if (!kept.Contains(f))
                {
                    yield return new ConntrackFilter(f.Destination, f.Port, null);
                }
                else
                {
                    foreach (var b in gone)
                    {
                        yield return new ConntrackFilter(f.Destination, f.Port, b);
                    }
                }
            }
        }

        if (now is { HasBackends: true } && was is not { HasBackends: true })
        {
            // Newly active: entries made while it rejected hold no DNAT.
            foreach (var f in kept)
            {
                yield return new ConntrackFilter(f.Destination, f.Port, null);
            }
        }
    }

    /// <summary>The filters for a whole write: every key's before and after (a key in only one of them was added or removed).</summary>
    public static List<ConntrackFilter> Plan(IReadOnlyDictionary<string, ServicePortState> before, IReadOnlyDictionary<string, ServicePortState> after) =>
        [.. before.Keys.Union(after.Keys)
            .SelectMany(k => Plan(before.GetValueOrDefault(k), after.GetValueOrDefault(k)))
            .Distinct()];

    /// <summary>
    /// Deletes every entry of the calling thread's namespace that a filter matches; returns how many went. An entry
    /// that expired between the dump and its delete is not an error.
    /// </summary>
    public static int Run(IReadOnlyCollection<ConntrackFilter> filters)
    {
        if (filters.Count == 0)
        {
            return 0;
        }

        var local = filters.Any(f => f.Destination is null) ? LocalAddresses() : [];
        using var ct = Conntrack.Open();
        var deleted = 0;
        foreach (var flow in ct.List())
        {
            if (!filters.Any(f => f.Matches(flow, local)))
            {
                continue;
            }

            try
            {
                ct.Delete(flow.Original, flow.Zone);
                deleted++;
            }
            catch (NetlinkException e) when (e.Errno == ENOENT)
            {
            }
        }

        return deleted;
    }

    private static HashSet<IPAddress> LocalAddresses()
    {
        using var nl = Netlink.Open();
        return [.. nl.AddrList(0, AddressFamily.InterNetwork).Select(a => a.Ip)];
    }

    private static IEnumerable<(IPAddress? Destination, int Port)> Frontends(ServicePortState s)
    {
        yield return (s.Frontend.Address, s.Frontend.Port);
        foreach (var ip in s.ExternalIps)
        {
            yield return (ip, s.Frontend.Port);
        }

        if (s.NodePort != 0)
        {
            yield return (null, s.NodePort);
        }
    }

    // Locality is part of a backend's equality; an endpoint is the same whichever node computed it.
    private static BackendAddress Key(BackendAddress b) => new(b.Address, b.Port);
}
