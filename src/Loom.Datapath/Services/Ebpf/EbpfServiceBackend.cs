using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Core.Model;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Services.Ebpf;

/// <summary>
/// kube-proxy replacement with eBPF (bpf/lb4.o): per-packet DNAT / reverse NAT by tc programs on the pods' host-side
/// veths, and socket-level LB by cgroup connect4 / sendmsg4 / recvmsg4 programs, both reading the same pinned maps.
/// <see cref="Sync"/> writes only the differences between the desired services and what the maps hold (so a restarted
/// backend adopts a previous run's maps): new backends first, then each service's slots and master entry, then
/// removals, so a new flow never picks a removed backend and connections to surviving backends keep their
/// connection-tracking entries. Not thread-safe: the agent calls it from its sync loop.
/// </summary>
public sealed class EbpfServiceBackend : IServiceBackend, IDisposable
{
    private static readonly string[] CgroupPrograms = [LbMaps.Connect4, LbMaps.Sendmsg4, LbMaps.Recvmsg4];

    private readonly EbpfServiceOptions _options;
    private BpfObject? _obj;

    public EbpfServiceBackend(EbpfServiceOptions? options = null)
    {
        _options = options ?? new EbpfServiceOptions();
        if (_options.Algorithm == LbAlgorithm.Maglev)
        {
            Maglev.ValidateTableSize(_options.MaglevTableSize);
        }
    }

    public string Name => "ebpf";

    public EbpfServiceOptions Options => _options;

    /// <summary>The loaded lb4 object (loading it, with its maps reused from the pins, on first use).</summary>
    public BpfObject Loaded => EnsureLoaded();

    /// <summary>Path of lb4.o as resolved from the options.</summary>
    public string ObjectPath => ResolveObject(_options.ObjectDirectory);

    public void Sync(IReadOnlyCollection<ServicePortState> desired)
    {
        ArgumentNullException.ThrowIfNull(desired);
        var obj = EnsureLoaded();
        var svcMap = obj.Map<LbServiceKey, LbService>(LbMaps.Services);
        var beMap = obj.Map<uint, LbBackend>(LbMaps.Backends);
        var rnMap = obj.Map<ushort, LbReverseNat>(LbMaps.ReverseNat);
        var mgMap = obj.Map<LbMaglevKey, LbMaglevChunk>(LbMaps.Maglev);
        var maglevSize = _options.Algorithm == LbAlgorithm.Maglev ? _options.MaglevTableSize : 0;
        var maglevTables = new HashSet<ushort>(); // rev-nat indexes whose table stays
        var sweepTables = false;

        var svcEntries = svcMap.Entries().ToDictionary(e => e.Key, e => e.Value);
        // Slots grouped by their service once: scanning every entry per service is quadratic (4 s at 10k services).
        var slotsOf = svcEntries.Keys.Where(k => k.Slot > 0).ToLookup(k => k.WithSlot(0));
        var backends = beMap.Entries().ToDictionary(e => e.Key, e => e.Value);
        var idOf = new Dictionary<LbBackend, uint>();
        foreach (var (id, be) in backends)
        {
            idOf.TryAdd(be, id);
        }

        // Frontends of services that exist now, with their rev-nat index (kept across syncs and restarts).
        var masters = svcEntries.Where(e => e.Key.Slot == 0).ToDictionary(e => e.Key, e => e.Value);
        var usedRevNat = new HashSet<ushort>(masters.Values.Select(v => v.RevNatIndex));
        foreach (var k in rnMap.Keys())
        {
            usedRevNat.Add(k);
        }

        var wanted = new Dictionary<LbServiceKey, ServicePortState>();
        foreach (var s in desired)
        {
            wanted[MasterKey(s.Frontend)] = s;
        }

        // 1. New backends first, so every slot written below points at a backend the data path can resolve.
        var nextId = backends.Count == 0 ? 1u : backends.Keys.Max() + 1;
        foreach (var s in wanted.Values)
        {
            foreach (var b in s.Backends)
            {
                var be = new LbBackend(b.Address, b.Port, ToSocketProtocol(s.Frontend.Protocol));
                if (!idOf.ContainsKey(be))
                {
                    var id = nextId++;
                    beMap.Update(id, be);
                    idOf[be] = id;
                    backends[id] = be;
                }
            }
        }

        // 2. Services: reverse NAT, then slots, then the master entry with the new count, then stale slots.
        var membersByRevNat = new Dictionary<ushort, HashSet<uint>>();
        foreach (var (master, s) in wanted)
        {
            ushort revNat;
            if (masters.TryGetValue(master, out var current))
            {
                revNat = current.RevNatIndex;
            }
            else
            {
                revNat = AllocateRevNat(usedRevNat);
                usedRevNat.Add(revNat);
            }

            var rn = new LbReverseNat(s.Frontend.Address, s.Frontend.Port);
            if (!rnMap.TryLookup(revNat, out var oldRn) || oldRn != rn)
            {
                rnMap.Update(revNat, rn);
            }

            var ids = s.Backends.Select(b => idOf[new LbBackend(b.Address, b.Port, master.ProtocolType())]).ToArray();
            membersByRevNat[revNat] = [.. ids];
            var oldCount = masters.TryGetValue(master, out var m) ? m.Count : 0;

            // Maglev: (re)write the lookup table before the master names it, and only when the backend set, the table
            // size or the table itself (a replaced map) changed. Every id in it is a live backend (written above).
            if (maglevSize > 0 && ids.Length > 0)
            {
                maglevTables.Add(revNat);
                var oldIds = new HashSet<uint>();
                for (var slot = 1; slot <= oldCount; slot++)
                {
                    if (svcEntries.TryGetValue(master.WithSlot(slot), out var old))
                    {
                        oldIds.Add(old.BackendId);
                    }
                }

                var same = oldCount > 0 && (m.Flags & LbMaps.FlagMaglev) != 0 && m.MaglevSize == maglevSize
                    && oldIds.SetEquals(ids) && mgMap.TryLookup(new LbMaglevKey(revNat, 0), out _);
                if (!same)
                {
                    WriteMaglevTable(mgMap, revNat, ids.Distinct().Select(id => (id, backends[id])).ToList(), maglevSize);
                    sweepTables = true;
                }
            }
            else if ((m.Flags & LbMaps.FlagMaglev) != 0)
            {
                sweepTables = true; // no longer a Maglev service (or no backends): its table goes after the master
            }

            // Slots beyond the new count that the old count still exposes get a surviving backend until the master
            // shrinks; every write replaces an old choice with one from the new list.
            var top = Math.Max(oldCount, ids.Length);
            for (var slot = 1; slot <= top && ids.Length > 0; slot++)
            {
                var value = new LbService { BackendId = ids[(slot - 1) % ids.Length], RevNatIndex = revNat };
                var key = master.WithSlot(slot);
                if (!svcEntries.TryGetValue(key, out var old) || old != value)
                {
                    svcMap.Update(key, value);
                }
            }

            var affinity = s.SessionAffinity == SessionAffinity.ClientIP;
            var newMaster = new LbService
            {
                BackendId = affinity ? (uint)Math.Max(1, s.AffinityTimeoutSeconds) : 0,
                Count = checked((ushort)ids.Length),
                RevNatIndex = revNat,
                Flags = (byte)((affinity ? LbMaps.FlagAffinity : 0) | (maglevTables.Contains(revNat) ? LbMaps.FlagMaglev : 0)),
                MaglevSize = maglevTables.Contains(revNat) ? checked((ushort)maglevSize) : (ushort)0,
            };
            if (!masters.TryGetValue(master, out var oldMaster) || oldMaster != newMaster)
            {
                svcMap.Update(master, newMaster);
            }

            foreach (var key in slotsOf[master].Where(k => k.Slot > ids.Length))
            {
                svcMap.Delete(key);
            }
        }

        // 3. Services that are gone: master first (the data path stops matching the frontend), then slots, rev-nat.
        foreach (var (master, value) in masters)
        {
            if (wanted.ContainsKey(master))
            {
                continue;
            }

            svcMap.Delete(master);
            sweepTables |= (value.Flags & LbMaps.FlagMaglev) != 0;
            foreach (var key in slotsOf[master])
            {
                svcMap.Delete(key);
            }

            rnMap.Delete(value.RevNatIndex);
        }

        // Slots whose master vanished (a sync interrupted half-way) and rev-nat entries nobody uses.
        foreach (var key in svcEntries.Keys.Where(k => k.Slot > 0 && !wanted.ContainsKey(k.WithSlot(0)) && !masters.ContainsKey(k.WithSlot(0))))
        {
            svcMap.Delete(key);
        }

        foreach (var idx in rnMap.Keys().Where(i => !membersByRevNat.ContainsKey(i)))
        {
            rnMap.Delete(idx);
        }

        // Maglev table chunks of services that are gone or no longer Maglev, and chunks beyond a shrunk table.
        if (sweepTables)
        {
            var chunks = (maglevSize + LbMaps.MaglevChunk - 1) / LbMaps.MaglevChunk;
            foreach (var key in mgMap.Keys().Where(k => !maglevTables.Contains(k.RevNatIndex) || k.Chunk >= chunks))
            {
                mgMap.Delete(key);
            }
        }

        // 4. Backends nobody references any more, and the CT / affinity entries that point at them.
        var referenced = new HashSet<uint>(membersByRevNat.Values.SelectMany(x => x));
        var removed = backends.Keys.Where(id => !referenced.Contains(id)).ToHashSet();
        foreach (var id in removed)
        {
            beMap.Delete(id);
        }

        var aff = obj.Map<LbAffinityKey, LbAffinityValue>(LbMaps.Affinity);
        foreach (var (k, v) in aff.Entries())
        {
            if (!membersByRevNat.TryGetValue(k.RevNatIndex, out var members) || !members.Contains(v.BackendId))
            {
                aff.Delete(k);
            }
        }

        if (removed.Count > 0)
        {
            // Ids are reused after a restart: a stale flow must never land on a newcomer with a recycled id.
            var ct = obj.Map<LbCtKey, LbCtEntry>(LbMaps.ConnTrack);
            foreach (var (k, v) in ct.Entries())
            {
                if (removed.Contains(v.BackendId))
                {
                    ct.Delete(k);
                }
            }
        }

        if (_options.Interfaces is { } interfaces)
        {
            foreach (var ifindex in interfaces())
            {
                Attach(ifindex);
            }
        }
    }

    /// <summary>
    /// Writes the Maglev table of a service (by rev-nat index) computed over its backends' "ip:port" names, chunk by
    /// chunk (each chunk update is atomic; a table being rewritten mixes old and new chunks, all naming live backends).
    /// </summary>
    private static void WriteMaglevTable(BpfMap<LbMaglevKey, LbMaglevChunk> map, ushort revNat, List<(uint Id, LbBackend Backend)> members, int size)
    {
        var table = Maglev.TableTruncated(members.Select(x => Maglev.Name(x.Backend.EndPoint.Address, x.Backend.EndPoint.Port)).ToArray(), size);
        for (var c = 0; c * LbMaps.MaglevChunk < size; c++)
        {
            var chunk = default(LbMaglevChunk);
            for (var i = 0; i < LbMaps.MaglevChunk && (c * LbMaps.MaglevChunk) + i < size; i++)
            {
                chunk[i] = members[table[(c * LbMaps.MaglevChunk) + i]].Id;
            }

            map.Update(new LbMaglevKey(revNat, c), chunk);
        }
    }

    /// <summary>Backend id -> number of slots in a service's Maglev table (empty if it has none).</summary>
    private static SortedDictionary<uint, int> MaglevShares(BpfObject obj, ushort revNat, int size)
    {
        var map = obj.Map<LbMaglevKey, LbMaglevChunk>(LbMaps.Maglev);
        var shares = new SortedDictionary<uint, int>();
        for (var c = 0; c * LbMaps.MaglevChunk < size; c++)
        {
            if (!map.TryLookup(new LbMaglevKey(revNat, c), out var chunk))
            {
                continue;
            }

            for (var i = 0; i < LbMaps.MaglevChunk && (c * LbMaps.MaglevChunk) + i < size; i++)
            {
                shares[chunk[i]] = shares.GetValueOrDefault(chunk[i]) + 1;
            }
        }

        return shares;
    }

    /// <summary>
    /// The backend id a service's Maglev table in the maps gives slot <paramref name="slot"/> (for tests and explain);
    /// null if the service has no table.
    /// </summary>
    public uint? MaglevBackend(ServicePortState service, int slot)
    {
        ArgumentNullException.ThrowIfNull(service);
        var obj = EnsureLoaded();
        if (!obj.Map<LbServiceKey, LbService>(LbMaps.Services).TryLookup(MasterKey(service.Frontend), out var m) || (m.Flags & LbMaps.FlagMaglev) == 0
            || !obj.Map<LbMaglevKey, LbMaglevChunk>(LbMaps.Maglev).TryLookup(new LbMaglevKey(m.RevNatIndex, slot / LbMaps.MaglevChunk), out var chunk))
        {
            return null;
        }

        return chunk[slot % LbMaps.MaglevChunk];
    }

    /// <summary>
    /// Puts the tc programs on a pod's host-side veth (in the calling thread's network namespace): lb4_from_pod on
    /// ingress (traffic from the pod), lb4_to_pod on egress (traffic to the pod). Idempotent; replaces a previous run's
    /// programs atomically.
    /// </summary>
    public void Attach(int ifindex)
    {
        var obj = EnsureLoaded();
        var from = obj.Program(LbMaps.FromPod);
        var to = obj.Program(LbMaps.ToPod);
        if (BpfTc.Query(ifindex, TcDirection.Egress, _options.TcPriority, _options.TcHandle) != to.Id)
        {
            to.AttachTc(ifindex, TcDirection.Egress, _options.TcPriority, _options.TcHandle);
        }

        if (BpfTc.Query(ifindex, TcDirection.Ingress, _options.TcPriority, _options.TcHandle) != from.Id)
        {
            from.AttachTc(ifindex, TcDirection.Ingress, _options.TcPriority, _options.TcHandle);
        }

        obj.Map<uint, uint>(LbMaps.Interfaces).Update((uint)ifindex, 1);
    }

    /// <summary>Removes the tc programs from <paramref name="ifindex"/> (if the veth still exists); forgets it either way.</summary>
    public void Detach(int ifindex)
    {
        var obj = EnsureLoaded();
        BpfTc.Detach(ifindex, TcDirection.Ingress, _options.TcPriority, _options.TcHandle);
        BpfTc.Detach(ifindex, TcDirection.Egress, _options.TcPriority, _options.TcHandle);
        obj.Map<uint, uint>(LbMaps.Interfaces).Delete((uint)ifindex);
    }

    /// <summary>Interfaces the tc programs were attached to (by this or a previous run).</summary>
    public IReadOnlyList<int> AttachedInterfaces() => EnsureLoaded().Map<uint, uint>(LbMaps.Interfaces).Keys().Select(k => (int)k).Order().ToArray();

    public void Flush()
    {
        if (_obj is null && !Directory.Exists(_options.PinDirectory))
        {
            return;
        }

        var obj = EnsureLoaded();
        foreach (var ifindex in AttachedInterfaces())
        {
            BpfTc.Detach(ifindex, TcDirection.Ingress, _options.TcPriority, _options.TcHandle);
            BpfTc.Detach(ifindex, TcDirection.Egress, _options.TcPriority, _options.TcHandle);
        }

        if (_options.CgroupPath is { } cg && Directory.Exists(cg))
        {
            foreach (var name in CgroupPrograms)
            {
                obj.Program(name).DetachCgroup(cg, AttachTypeOf(name));
                DetachPinned(cg, name);
            }
        }

        ClearAll(obj);
        obj.Dispose();
        _obj = null;
        BpfFs.RemoveTree(_options.PinDirectory);
    }

    public string Explain(ServicePortState service)
    {
        ArgumentNullException.ThrowIfNull(service);
        var obj = EnsureLoaded();
        var svcMap = obj.Map<LbServiceKey, LbService>(LbMaps.Services);
        var beMap = obj.Map<uint, LbBackend>(LbMaps.Backends);
        var rnMap = obj.Map<ushort, LbReverseNat>(LbMaps.ReverseNat);
        var master = MasterKey(service.Frontend);
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.Append(inv, $"{LbMaps.Services} {service.Frontend} ({service.Name})\n");
        if (!svcMap.TryLookup(master, out var m))
        {
            sb.Append("  (no entry)\n");
            return sb.ToString();
        }

        var affinity = (m.Flags & LbMaps.FlagAffinity) != 0 ? $" affinity ClientIP timeout {m.BackendId}s" : "";
        sb.Append(inv, $"  slot 0 (master): count {m.Count} rev-nat {m.RevNatIndex} flags 0x{m.Flags:x2}{affinity}\n");
        if (m.Count == 0)
        {
            sb.Append("  no backends: TCP SYN answered with RST (tc), connect()/sendmsg() fail with EPERM (socket LB)\n");
        }

        for (var slot = 1; slot <= m.Count; slot++)
        {
            if (!svcMap.TryLookup(master.WithSlot(slot), out var v))
            {
                sb.Append(inv, $"  slot {slot}: (missing)\n");
                continue;
            }

            var be = beMap.TryLookup(v.BackendId, out var b) ? b.ToString() : "(missing backend)";
            sb.Append(inv, $"  slot {slot}: backend {v.BackendId} -> {be}\n");
        }

        if ((m.Flags & LbMaps.FlagMaglev) != 0)
        {
            sb.Append(inv, $"  maglev: table of {m.MaglevSize} slots in {LbMaps.Maglev}, slot = jhash(flow) % {m.MaglevSize}\n");
            foreach (var (id, n) in MaglevShares(obj, m.RevNatIndex, m.MaglevSize))
            {
                var be = beMap.TryLookup(id, out var b) ? b.ToString() : "(missing backend)";
                sb.Append(inv, $"    backend {id} -> {be}: {n} slots\n");
            }
        }

        var rn = rnMap.TryLookup(m.RevNatIndex, out var r) ? r.ToString() : "(missing)";
        sb.Append(inv, $"{LbMaps.ReverseNat} {m.RevNatIndex} -> {rn}\n");
        return sb.ToString();
    }

    /// <summary>Every service, backend and rev-nat entry in a stable text form (for tests and debugging).</summary>
    public string Dump()
    {
        var obj = EnsureLoaded();
        var sb = new StringBuilder();
        var maglev = new List<(ushort RevNat, int Size)>();
        foreach (var (k, v) in obj.Map<LbServiceKey, LbService>(LbMaps.Services).Entries().OrderBy(e => e.Key.ToString(), StringComparer.Ordinal))
        {
            var size = (v.Flags & LbMaps.FlagMaglev) != 0 ? string.Create(CultureInfo.InvariantCulture, $" maglev {v.MaglevSize}") : "";
            sb.Append(CultureInfo.InvariantCulture, $"svc {k}: id/timeout {v.BackendId} count {v.Count} rev-nat {v.RevNatIndex} flags {v.Flags}{size}\n");
            if (k.Slot == 0 && (v.Flags & LbMaps.FlagMaglev) != 0)
            {
                maglev.Add((v.RevNatIndex, v.MaglevSize));
            }
        }

        foreach (var (revNat, size) in maglev.OrderBy(x => x.RevNat))
        {
            var shares = string.Join(", ", MaglevShares(obj, revNat, size).Select(x => string.Create(CultureInfo.InvariantCulture, $"{x.Key} x{x.Value}")));
            sb.Append(CultureInfo.InvariantCulture, $"maglev {revNat}: {shares}\n");
        }

        var chunks = obj.Map<LbMaglevKey, LbMaglevChunk>(LbMaps.Maglev).Keys().Count;
        sb.Append(CultureInfo.InvariantCulture, $"maglev chunks: {chunks}\n");

        foreach (var (k, v) in obj.Map<uint, LbBackend>(LbMaps.Backends).Entries().OrderBy(e => e.Key))
        {
            sb.Append(CultureInfo.InvariantCulture, $"backend {k}: {v}\n");
        }

        foreach (var (k, v) in obj.Map<ushort, LbReverseNat>(LbMaps.ReverseNat).Entries().OrderBy(e => e.Key))
        {
            sb.Append(CultureInfo.InvariantCulture, $"rev-nat {k}: {v}\n");
        }

        return sb.ToString();
    }

    /// <summary>Closes this process's descriptors; maps, pins and attachments stay (a restart adopts them).</summary>
    public void Dispose()
    {
        _obj?.Dispose();
        _obj = null;
    }

    internal static string ResolveObject(string? directory)
    {
        if (directory is not null)
        {
            return Path.Combine(directory, LbMaps.ObjectFile);
        }

        if (Environment.GetEnvironmentVariable("LOOM_BPF_DIR") is { Length: > 0 } env)
        {
            return Path.Combine(env, LbMaps.ObjectFile);
        }

        var beside = Path.Combine(AppContext.BaseDirectory, "bpf", LbMaps.ObjectFile);
        if (File.Exists(beside))
        {
            return beside;
        }

        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "out", "bpf", LbMaps.ObjectFile);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return beside;
    }

    private BpfObject EnsureLoaded()
    {
        if (_obj is not null)
        {
            return _obj;
        }

        if (_options.PinDirectory.StartsWith(BpfFs.DefaultRoot + "/", StringComparison.Ordinal))
        {
            BpfFs.EnsureMounted();
        }

        var obj = BpfObject.Load(ObjectPath, _options.PinDirectory);
        try
        {
            if (_options.CgroupPath is { } cg)
            {
                foreach (var name in CgroupPrograms)
                {
                    AttachCgroup(obj.Program(name), cg, name);
                }
            }
        }
        catch
        {
            obj.Dispose();
            throw;
        }

        _obj = obj;
        return obj;
    }

    /// <summary>Attaches the new program, then detaches the one a previous run pinned (both are equivalent meanwhile).</summary>
    private void AttachCgroup(BpfProgram prog, string cgroup, string name)
    {
        var type = AttachTypeOf(name);
        prog.AttachCgroup(cgroup, type);
        var pin = Path.Combine(_options.PinDirectory, "prog_" + name);
        if (File.Exists(pin))
        {
            using var old = BpfProgram.OpenPinned(pin);
            if (old.Id != prog.Id)
            {
                old.DetachCgroup(cgroup, type);
            }

            BpfFs.Unpin(pin);
        }

        prog.Pin(pin);
    }

    private void DetachPinned(string cgroup, string name)
    {
        var pin = Path.Combine(_options.PinDirectory, "prog_" + name);
        if (File.Exists(pin))
        {
            using var old = BpfProgram.OpenPinned(pin);
            old.DetachCgroup(cgroup, AttachTypeOf(name));
        }
    }

    private static BpfCgroupAttachType AttachTypeOf(string name) => name switch
    {
        LbMaps.Connect4 => BpfCgroupAttachType.Inet4Connect,
        LbMaps.Sendmsg4 => BpfCgroupAttachType.Udp4Sendmsg,
        LbMaps.Recvmsg4 => BpfCgroupAttachType.Udp4Recvmsg,
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
    };

    private static void ClearAll(BpfObject obj)
    {
        obj.Map<LbServiceKey, LbService>(LbMaps.Services).Clear();
        obj.Map<uint, LbBackend>(LbMaps.Backends).Clear();
        obj.Map<ushort, LbReverseNat>(LbMaps.ReverseNat).Clear();
        obj.Map<LbCtKey, LbCtEntry>(LbMaps.ConnTrack).Clear();
        obj.Map<LbAffinityKey, LbAffinityValue>(LbMaps.Affinity).Clear();
        obj.Map<uint, uint>(LbMaps.Interfaces).Clear();
        obj.Map<LbMaglevKey, LbMaglevChunk>(LbMaps.Maglev).Clear();
        obj.Map(LbMaps.SocketReverse).As<SkRevKey, SkRevValue>().Clear();
    }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct SkRevKey
    {
        public ulong Cookie;
        public uint Address;
        public ushort Port;
        public ushort Pad;
    }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct SkRevValue
    {
        public uint Address;
        public ushort Port;
        public ushort RevNat;
    }

    private static ushort AllocateRevNat(HashSet<ushort> used)
    {
        for (var i = 1; i <= ushort.MaxValue; i++)
        {
            if (!used.Contains((ushort)i))
            {
                return (ushort)i;
            }
        }

        throw new InvalidOperationException("out of reverse-NAT indexes (65535 service ports)");
    }

    private static LbServiceKey MasterKey(Frontend f) => new(f.Address, f.Port, ToSocketProtocol(f.Protocol), 0);

    internal static ProtocolType ToSocketProtocol(Protocol p) => p switch
    {
        Protocol.Tcp => ProtocolType.Tcp,
        Protocol.Udp => ProtocolType.Udp,
        _ => throw new ArgumentOutOfRangeException(nameof(p), p, null),
    };
}

internal static class LbServiceKeyExtensions
{
    public static ProtocolType ProtocolType(this LbServiceKey key) => (ProtocolType)key.Protocol;
}
