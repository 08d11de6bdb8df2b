using System.Diagnostics;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Services.Ebpf;

/// <summary>
/// How long lb4_ct entries live after their flow's last packet, as Cilium's CT (bpf/lib/conntrack.h, pkg/maps/ctmap):
/// a TCP flow that has seen only SYNs 60 s, an established one 6 h, one that has seen a FIN or RST 10 s, UDP 60 s; and
/// how often the agent's GC pass (<see cref="LbConntrackGc"/>) deletes the expired ones (Cilium's interval is dynamic).
/// The programs apply the same lifetimes (through lb4_config) to an expired entry the GC has not reached yet.
/// </summary>
public sealed record LbConntrackLifetimes
{
    public TimeSpan TcpSyn { get; init; } = TimeSpan.FromSeconds(60);

    public TimeSpan TcpEstablished { get; init; } = TimeSpan.FromSeconds(21600);

    public TimeSpan TcpClosing { get; init; } = TimeSpan.FromSeconds(10);

    public TimeSpan Other { get; init; } = TimeSpan.FromSeconds(60);

    public TimeSpan GcInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>lb4_config with these lifetimes (whole seconds, 1 s to 2^32 - 1 s each).</summary>
    public LbConfig Apply(LbConfig config)
    {
        if (GcInterval <= TimeSpan.Zero)
        {
            throw new ArgumentException($"lb4 conntrack: the GC interval must be positive, not {GcInterval}");
        }

        config.CtTcpSynSeconds = Seconds(TcpSyn, "TCP SYN");
        config.CtTcpSeconds = Seconds(TcpEstablished, "TCP established");
        config.CtTcpCloseSeconds = Seconds(TcpClosing, "TCP closing");
        config.CtOtherSeconds = Seconds(Other, "non-TCP");
        return config;
    }

    /// <summary>The lifetime of a flow of <paramref name="protocol"/> whose entries carry <paramref name="flags"/>, in ns.</summary>
    public ulong For(byte protocol, ushort flags) => (ulong)(protocol != (byte)System.Net.Sockets.ProtocolType.Tcp ? Other
        : (flags & LbMaps.CtClosing) != 0 ? TcpClosing
        : (flags & LbMaps.CtEstablished) != 0 ? TcpEstablished
        : TcpSyn).Ticks * 100;

    private static uint Seconds(TimeSpan t, string what) =>
        t.TotalSeconds is >= 1 and <= uint.MaxValue && t.Ticks % TimeSpan.TicksPerSecond == 0
            ? (uint)t.TotalSeconds
            : throw new ArgumentException($"lb4 conntrack: the {what} lifetime must be whole seconds from 1 s, not {t}");
}

/// <summary>What one GC pass deleted, and what the entries left still reference (ids not to hand out again yet).</summary>
public sealed record LbConntrackGcResult(int ConnTrackDeleted, int SnatDeleted, int ConnTrackLeft, int SnatLeft,
    IReadOnlySet<ushort> RevNatInUse, IReadOnlySet<uint> BackendsInUse)
{
    public int Deleted => ConnTrackDeleted + SnatDeleted;
}

/// <summary>
/// The GC pass over lb4_ct and lb4_snat, by the programs' clock (bpf_ktime_get_ns: CLOCK_MONOTONIC, the runtime's
/// Stopwatch on Linux). A flow's forward entry (client -> frontend) and its reverse entry (client -> backend, refreshed
/// by replies) live and die together: the flow expires when neither has seen a packet for the lifetime its flags give.
/// A reverse entry whose forward entry is gone (evicted, or a later flow on the tuple chose another backend) goes too,
/// after a grace second (the programs write the forward half first). A node-port SNAT pair (OUT and IN) lives as long as
/// its flow's conntrack entries, a moment after them (TCP: the closing lifetime), and UDP pairs by their own last packet.
/// Entries of a service that is gone (no lb4_revnat entry) go at once. An entry judged stale is read again just before
/// its delete and kept if it changed since the snapshot (a packet, or a new flow reusing the key). Not thread-safe: run
/// it where syncs run.
/// </summary>
public sealed class LbConntrackGc(IBpfMap<LbCtKey, LbCtEntry> connTrack, IBpfMap<LbCtKey, LbSnatEntry> snat,
    IBpfMap<ushort, LbReverseNat> reverseNat, LbConntrackLifetimes lifetimes)
{
    /// <summary>How long a half-written pair (a reverse or IN entry without its other half) is left alone.</summary>
    private const ulong GraceNs = 1_000_000_000;

    private const byte Svc = 0;
    private const byte Rev = 1;

    /// <summary>CLOCK_MONOTONIC now, in ns: what bpf_ktime_get_ns says at this moment.</summary>
    public static ulong MonotonicNs() => (ulong)(Stopwatch.GetTimestamp() * (1_000_000_000.0 / Stopwatch.Frequency));

    public LbConntrackGcResult Run() => Run(MonotonicNs());

    public LbConntrackGcResult Run(ulong now)
    {
        var entries = connTrack.Entries();
        var services = reverseNat.Keys().ToHashSet(); // read after lb4_ct: an index an entry names was written before it
        var forward = new Dictionary<Flow, (LbCtKey Key, LbCtEntry Value)>();
        var reverse = new Dictionary<Flow, LbCtEntry>();
        foreach (var (k, v) in entries)
        {
            if (k.Direction == Svc)
            {
                forward[Flow.Of(k, v)] = (k, v);
            }
            else if (k.Direction == Rev)
            {
                reverse[Flow.Of(k, v)] = v;
            }
        }

        var alive = new Dictionary<Flow, (ulong LastSeen, ushort Flags)>();
        int ctDeleted = 0, ctLeft = 0;
        var revNats = new HashSet<ushort>();
        var backends = new HashSet<uint>();
        foreach (var (flow, (_, fwd)) in forward)
        {
            var last = fwd.LastSeenNs;
            var flags = fwd.Flags;
            if (reverse.TryGetValue(flow, out var rev))
            {
                last = Math.Max(last, rev.LastSeenNs);
                flags |= rev.Flags;
            }

            if (services.Contains(flow.RevNat) && !Stale(last, now, lifetimes.For(flow.Protocol, flags)))
            {
                alive[flow] = (last, flags);
            }
        }

        var tupleOwner = new Dictionary<Flow, uint>();
        foreach (var f in forward.Keys)
        {
            tupleOwner.TryAdd(f with { Backend = 0 }, f.Backend); // one per tuple, unless a stale entry names a reused index
        }
        foreach (var (k, v) in entries)
        {
            var flow = Flow.Of(k, v);
            var keep = k.Direction switch
            {
                Svc => alive.ContainsKey(flow),
                Rev => alive.ContainsKey(flow) || (services.Contains(flow.RevNat) && KeepReverse(flow, v, tupleOwner, now)),
                _ => true,
            };
            var current = v;
            if (!keep && !connTrack.TryLookup(k, out current))
            {
                continue; // gone meanwhile (evicted)
            }

            // Written again since the snapshot (a packet, or a new flow on the key): not what was judged.
            keep |= current != v;
            if (keep)
            {
                ctLeft++;
                revNats.Add(current.RevNatIndex);
                backends.Add(current.BackendId);
            }
            else if (connTrack.Delete(k))
            {
                ctDeleted++;
            }
        }

        var (snatDeleted, snatLeft) = CollectSnat(now, services, alive, revNats);
        return new LbConntrackGcResult(ctDeleted, snatDeleted, ctLeft, snatLeft, revNats, backends);
    }

    /// <summary>
    /// A reverse entry whose flow is not alive: gone with its expired forward entry; kept for the grace second when there
    /// is none (half-written); by its own lifetime when a later flow on the tuple chose another backend (the earlier
    /// connection's last segments).
    /// </summary>
    private bool KeepReverse(Flow flow, LbCtEntry v, Dictionary<Flow, uint> tupleOwner, ulong now)
    {
        if (!tupleOwner.TryGetValue(flow with { Backend = 0 }, out var owner))
        {
            return !Stale(v.LastSeenNs, now, GraceNs);
        }

        return owner != flow.Backend && !Stale(v.LastSeenNs, now, lifetimes.For(flow.Protocol, v.Flags));
    }

    private (int Deleted, int Left) CollectSnat(ulong now, HashSet<ushort> services, Dictionary<Flow, (ulong LastSeen, ushort Flags)> alive,
        HashSet<ushort> revNats)
    {
        var entries = snat.Entries();
        var all = entries.ToDictionary(e => e.Key, e => e.Value);
        var liveByClient = alive.ToLookup(a => (a.Key.Client, a.Key.ClientPort, a.Key.Protocol, a.Key.RevNat), a => a.Value);
        int deleted = 0, left = 0;
        foreach (var (k, v) in entries)
        {
            // OUT: client -> backend => node:port; IN: backend -> node:port => client. Each names the other's key.
            var other = k.Direction == LbMaps.SnatOut
                ? k with { SourceAddress = k.DestinationAddress, DestinationAddress = v.Address, SourcePort = k.DestinationPort, DestinationPort = v.Port, Direction = LbMaps.SnatIn }
                : k with { SourceAddress = v.Address, DestinationAddress = k.SourceAddress, SourcePort = v.Port, DestinationPort = k.SourcePort, Direction = LbMaps.SnatOut };
            var (client, clientPort) = k.Direction == LbMaps.SnatOut ? (k.SourceAddress, k.SourcePort) : (v.Address, v.Port);
            var paired = all.TryGetValue(other, out var half) && half.RevNatIndex == v.RevNatIndex;
            var last = paired ? Math.Max(v.LastSeenNs, half.LastSeenNs) : v.LastSeenNs;
            ulong lifetime;
            if (!paired)
            {
                lifetime = GraceNs;
            }
            else if (k.Protocol != (byte)System.Net.Sockets.ProtocolType.Tcp)
            {
                lifetime = lifetimes.For(k.Protocol, 0);
            }
            else
            {
                // The flow's conntrack entries decide; once they are gone, the closing lifetime lets the last segments through.
                var flow = liveByClient[(client, clientPort, k.Protocol, v.RevNatIndex)].ToList();
                lifetime = flow.Count == 0 ? lifetimes.For(k.Protocol, LbMaps.CtClosing) : lifetimes.For(k.Protocol, flow[0].Flags);
                last = flow.Count == 0 ? last : Math.Max(last, flow[0].LastSeen);
            }

            if (services.Contains(v.RevNatIndex) && !Stale(last, now, lifetime))
            {
                left++;
                revNats.Add(v.RevNatIndex);
            }
            else if (!snat.TryLookup(k, out var current))
            {
                continue; // gone meanwhile
            }
            else if (current != v)
            {
                left++; // written again since the snapshot: a packet of the flow, or a new flow on the NAT port
                revNats.Add(current.RevNatIndex);
            }
            else if (snat.Delete(k))
            {
                deleted++;
            }
        }

        return (deleted, left);
    }

    private static bool Stale(ulong lastSeen, ulong now, ulong lifetime) => now > lastSeen && now - lastSeen > lifetime;

    /// <summary>One flow as both its entries name it: the client's address and port, protocol, service and backend.</summary>
    private readonly record struct Flow(uint Client, ushort ClientPort, byte Protocol, ushort RevNat, uint Backend)
    {
        public static Flow Of(LbCtKey k, LbCtEntry v) => new(k.SourceAddress, k.SourcePort, k.Protocol, v.RevNatIndex, v.BackendId);
    }
}
