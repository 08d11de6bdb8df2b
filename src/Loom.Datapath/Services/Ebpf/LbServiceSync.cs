using Loom.Core.Model;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Services.Ebpf;

/// <summary>
/// Writes services into the lb4 maps and keeps in memory what it wrote. The first sync (and every full resync after
/// <see cref="Invalidate"/>) reads the maps and repairs whatever differs, so a restarted agent adopts a previous run's
/// maps and drift written behind its back is undone; later syncs diff the desired services against memory and touch
/// only the entries of services that changed. Within a sync: removed services first (so a full map never keeps a
/// deleted service's traffic), then per changed service its new backends, rev-nat, Maglev table, slots and master (a
/// service that does not fit is skipped, <see cref="Skipped"/>), then backends no service references any more and
/// the affinity / connection-tracking entries naming them, so a new flow never picks a removed backend and flows to
/// surviving backends keep their entries. Backend ids are refcounted and never handed out again by this instance (after a
/// restart: none up to the highest a map still names). A freed rev-nat index is quarantined while a conntrack or SNAT
/// entry may name it (a reply would be reverse-translated into another service's frontend): until a GC pass that
/// started after the free finds none (<see cref="Collected"/>).
/// Each state is one frontend (<see cref="LbFrontends"/> splits a service port into its ClusterIP, node-port and
/// external-IP frontends); <see cref="ServicePortState.IsExternal"/> marks the external ones.
/// </summary>
internal sealed partial class LbServiceSync(LbMapSet maps, int maglevSize)
{
    private readonly Dictionary<LbServiceKey, Applied> _applied = [];
    private readonly Dictionary<LbBackend, uint> _idOf = [];
    private readonly Dictionary<uint, BackendRef> _backends = [];
    private readonly HashSet<ushort> _revNats = [];
    private readonly HashSet<ushort> _quarantine = []; // freed rev-nat indexes entries may still name
    private ushort _revNatFrom = 1; // every index below it is in use or quarantined
    private uint _nextId = 1;
    private long _syncs;
    private int _seen; // services of this sync's desired state found or written so far (each counted once)

    /// <summary>False until a sync has read the maps; then syncs trust memory until <see cref="Invalidate"/>.</summary>
    public bool Adopted { get; private set; }

    /// <summary>Makes the next sync a full one (re-read the maps, repair drift).</summary>
    public void Invalidate() => Adopted = false;

    /// <summary>Service ports written by the last sync (for tests).</summary>
    public int Services => _applied.Count;

    /// <summary>Freed rev-nat indexes not handed out again yet (conntrack or SNAT entries may still name them).</summary>
    public int Quarantined => _quarantine.Count;

    /// <summary>
    /// A GC pass over lb4_ct and lb4_snat ended: the quarantined rev-nat indexes its remaining entries do not name are
    /// free again. The pass must have started after every free so far (no sync in between: the caller holds the syncs'
    /// lock across both, as <see cref="EbpfServiceBackend.CollectConntrack"/> runs where syncs run).
    /// </summary>
    public void Collected(IReadOnlySet<ushort> revNatInUse)
    {
        ArgumentNullException.ThrowIfNull(revNatInUse);
        foreach (var idx in _quarantine.Where(q => !revNatInUse.Contains(q)).ToList())
        {
            _quarantine.Remove(idx);
            _revNatFrom = Math.Min(_revNatFrom, idx);
        }
    }

    public void Sync(IReadOnlyCollection<ServicePortState> desired)
    {
        try
        {
            var pass = Adopted ? new Pass(false) : ReadMaps();
            _syncs++;
            _seen = 0;
            _skipped.Clear();
            var changed = Changed(desired);
            RemoveServices(pass); // first: a full map must not keep deleted services' entries
            foreach (var (key, s) in changed)
            {
                TryWriteService(key, s, pass);
            }

            if (pass.Full)
            {
                SweepStrays(pass);
            }

            var removed = RemoveBackends(pass);
            SweepAffinity(pass);
            SweepConnTrack(removed, pass);
            Adopted = !pass.Dirty && _skipped.Count == 0; // a skipped service is tried again by the next (full) sync
        }
        catch
        {
            // Memory may be ahead of or behind the maps now: the next sync reads them again.
            Adopted = false;
            throw;
        }
    }

    /// <summary>
    /// The incremental path: writes <paramref name="changed"/> and removes <paramref name="removed"/> on top of what the
    /// last sync wrote, touching no other service's entries and reading no map (except the affinity and conntrack sweeps
    /// when a backend lost its last reference). A frontend in both (handed from one port to another) is simply rewritten.
    /// </summary>
    public void Update(IReadOnlyCollection<ServicePortState> changed, IReadOnlyCollection<ServicePortState> removed)
    {
        ArgumentNullException.ThrowIfNull(changed);
        ArgumentNullException.ThrowIfNull(removed);
        if (!Adopted)
        {
            throw new InvalidOperationException("lb4: an incremental update needs a full sync first");
        }

        try
        {
            var pass = new Pass(false);
            var writes = new List<KeyValuePair<LbServiceKey, ServicePortState>>(changed.Count);
            var written = new HashSet<LbServiceKey>();
            foreach (var s in changed)
            {
                var key = EbpfServiceBackend.MasterKey(s.Frontend);
                written.Add(key);
                if (!(_applied.TryGetValue(key, out var a) && a.Desired is not null && Same(a.Desired, s)))
                {
                    writes.Add(new(key, s));
                }
            }

            // Removals first: a full map must not keep deleted services' entries.
            _skipped.Clear();
            foreach (var s in removed)
            {
                var key = EbpfServiceBackend.MasterKey(s.Frontend);
                if (!written.Contains(key) && _applied.TryGetValue(key, out var a))
                {
                    RemoveService(key, a, pass);
                }
            }

            foreach (var (key, s) in writes)
            {
                TryWriteService(key, s, pass);
            }

            var gone = RemoveBackends(pass);
            SweepAffinity(pass);
            SweepConnTrack(gone, pass);
            Adopted = !pass.Dirty && _skipped.Count == 0; // a skipped service is tried again by the next (full) sync
        }
        catch
        {
            Adopted = false;
            throw;
        }
    }

    /// <summary>Full pass: forgets memory and rebuilds it from the maps (services, backends, rev-nat, Maglev tables).</summary>
    private Pass ReadMaps()
    {
        _applied.Clear();
        _idOf.Clear();
        _backends.Clear();
        _revNats.Clear();
        _revNatFrom = 1;
        var pass = new Pass(true);
        var maxId = 0u;
        foreach (var (id, be) in maps.Backends.Entries())
        {
            _backends[id] = new BackendRef(be);
            _idOf.TryAdd(be, id);
            maxId = Math.Max(maxId, id);
        }

        var slots = new List<KeyValuePair<LbServiceKey, LbService>>();
        foreach (var e in maps.Services.Entries())
        {
            if (e.Key.Slot == 0)
            {
                _applied[e.Key] = new Applied { Master = e.Value };
                _revNats.Add(e.Value.RevNatIndex);
            }
            else
            {
                slots.Add(e);
            }
        }

        foreach (var (key, value) in slots)
        {
            maxId = Math.Max(maxId, value.BackendId); // a dangling slot's id is not handed to a new backend either
            if (_applied.TryGetValue(key.WithSlot(0), out var a))
            {
                if (a.Slots.Length < key.Slot)
                {
                    var grown = a.Slots;
                    Array.Resize(ref grown, key.Slot);
                    a.Slots = grown;
                }

                a.Slots[key.Slot - 1] = value;
            }
            else
            {
                pass.OrphanSlots.Add(key); // its master is gone (a sync interrupted half-way)
            }
        }

        foreach (var a in _applied.Values)
        {
            a.Members = a.Slots.Where(v => v != default && _backends.ContainsKey(v.BackendId)).Select(v => v.BackendId).ToHashSet();
            foreach (var id in a.Members)
            {
                _backends[id].Refs++;
            }
        }

        pass.KernelRevNat = maps.ReverseNat.Entries().ToDictionary(e => e.Key, e => e.Value);
        pass.KernelTables = maps.Maglev.Keys().Where(k => k.Chunk == 0).Select(k => k.RevNatIndex).ToHashSet();
        foreach (var a in _applied.Values)
        {
            a.HasTable = pass.KernelTables.Contains(a.Master.RevNatIndex);
        }

        _revNats.UnionWith(pass.KernelRevNat.Keys); // not reused before the sweep removes them

        // A previous run's flows may name ids it freed: none is handed out before a GC pass finds it unused.
        _quarantine.Clear();
        foreach (var (_, v) in maps.ConnTrack.Entries())
        {
            maxId = Math.Max(maxId, v.BackendId);
            _quarantine.Add(v.RevNatIndex);
        }

        foreach (var (_, v) in maps.Snat?.Entries() ?? [])
        {
            _quarantine.Add(v.RevNatIndex);
        }

        _nextId = checked(maxId + 1);
        return pass;
    }

    /// <summary>
    /// Desired services that are new or differ from what was written (all of them on a full pass), in order (a frontend
    /// given twice ends as the last one says); the others are marked as seen, without building a set of the desired.
    /// </summary>
    private List<KeyValuePair<LbServiceKey, ServicePortState>> Changed(IReadOnlyCollection<ServicePortState> desired)
    {
        var changed = new List<KeyValuePair<LbServiceKey, ServicePortState>>();
        foreach (var s in desired)
        {
            var key = EbpfServiceBackend.MasterKey(s.Frontend);
            if (_applied.TryGetValue(key, out var a) && a.Desired is not null && Same(a.Desired, s))
            {
                MarkSeen(a);
            }
            else
            {
                if (a is not null)
                {
                    MarkSeen(a); // kept (rewritten), not removed, by the removals that run before the writes
                }

                changed.Add(new(key, s));
            }
        }

        return changed;
    }

    private void MarkSeen(Applied a)
    {
        if (a.Seen != _syncs)
        {
            a.Seen = _syncs;
            _seen++;
        }
    }

    /// <summary>
    /// Whether two desired states of one frontend (the key: address, protocol and port are equal) write the same
    /// entries. Runs for every service on every sync, so it compares fields, without enumerators.
    /// </summary>
    private static bool Same(ServicePortState a, ServicePortState b)
    {
        if (ReferenceEquals(a, b))
        {
            return true;
        }

        if (a.SessionAffinity != b.SessionAffinity || a.AffinityTimeoutSeconds != b.AffinityTimeoutSeconds || a.Backends.Count != b.Backends.Count
            || a.IsExternal != b.IsExternal || a.ExternalTrafficPolicy != b.ExternalTrafficPolicy)
        {
            return false;
        }

        for (var i = 0; i < a.Backends.Count; i++)
        {
            BackendAddress x = a.Backends[i], y = b.Backends[i];
            if (x.Port != y.Port || x.IsLocal != y.IsLocal || !x.Address.Equals(y.Address))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Step 1: backend ids of the changed services, writing the backends that have none yet, so every slot written
    /// next points at a backend the data path can resolve. Takes the new references before any old one is dropped.
    /// </summary>
    private List<uint[]> AddBackends(List<KeyValuePair<LbServiceKey, ServicePortState>> changed)
    {
        var all = new List<uint[]>(changed.Count);
        foreach (var (master, s) in changed)
        {
            var ids = new uint[s.Backends.Count];
            for (var i = 0; i < ids.Length; i++)
            {
                var be = new LbBackend(s.Backends[i].Address, s.Backends[i].Port, master.ProtocolType(), s.Backends[i].IsLocal ? LbMaps.BackendLocal : (byte)0);
                if (!_idOf.TryGetValue(be, out var id))
                {
                    id = _nextId == uint.MaxValue ? throw new InvalidOperationException("out of backend ids") : _nextId++;
                    maps.Backends.Update(id, be);
                    _idOf[be] = id;
                    _backends[id] = new BackendRef(be);
                }

                ids[i] = id;
            }

            foreach (var id in ids.Distinct())
            {
                _backends[id].Refs++;
            }

            all.Add(ids);
        }

        return all;
    }

    /// <summary>
    /// Step 2, per changed service: reverse NAT, the Maglev table (only when its backend set changed), the slots, the
    /// master entry with the new count, then slots beyond it and table chunks no longer named; then drops the old
    /// references. Entries already holding the wanted value are not written.
    /// </summary>
    private void WriteService(LbServiceKey master, ServicePortState s, uint[] ids, Pass pass)
    {
        _applied.TryGetValue(master, out var cur);
        var revNat = cur?.Master.RevNatIndex ?? AllocateRevNat();
        if (cur?.Desired is null)
        {
            // New here, or adopted from the maps: the rev-nat entry may be missing or wrong. Otherwise the frontend
            // (the key) did not change, so neither did it.
            var rn = new LbReverseNat(s.Frontend.Address, s.Frontend.Port);
            if (pass.KernelRevNat is null || !pass.KernelRevNat.TryGetValue(revNat, out var oldRn) || oldRn != rn)
            {
                maps.ReverseNat.Update(revNat, rn);
            }
        }

        var old = cur?.Master ?? default;
        var oldCount = cur is null ? 0 : old.Count;
        var members = ids.ToHashSet();
        var table = maglevSize > 0 && ids.Length > 0;
        if (table)
        {
            var oldIds = cur is null ? [] : cur.Slots.Take(oldCount).Where(v => v != default).Select(v => v.BackendId).ToHashSet();
            var same = oldCount > 0 && (old.Flags & LbMaps.FlagMaglev) != 0 && old.MaglevSize == maglevSize && oldIds.SetEquals(members) && cur!.HasTable;
            if (!same)
            {
                WriteMaglevTable(revNat, [.. ids.Distinct().Select(id => (id, _backends[id].Backend))]);
            }
        }

        // Slots beyond the new count that the old count still exposes get a surviving backend until the master
        // shrinks; every write replaces an old choice with one from the new list.
        var slots = new LbService[ids.Length];
        var top = Math.Max(oldCount, ids.Length);
        for (var slot = 1; slot <= top && ids.Length > 0; slot++)
        {
            var value = new LbService { BackendId = ids[(slot - 1) % ids.Length], RevNatIndex = revNat };
            if (slot <= ids.Length)
            {
                slots[slot - 1] = value;
            }

            if (cur is null || slot > cur.Slots.Length || cur.Slots[slot - 1] != value)
            {
                maps.Services.Update(master.WithSlot(slot), value);
            }
        }

        var affinity = s.SessionAffinity == SessionAffinity.ClientIP;
        var newMaster = new LbService
        {
            BackendId = affinity ? (uint)Math.Max(1, s.AffinityTimeoutSeconds) : 0,
            Count = checked((ushort)ids.Length),
            RevNatIndex = revNat,
            Flags = (byte)((affinity ? LbMaps.FlagAffinity : 0) | (table ? LbMaps.FlagMaglev : 0)
                | (s.IsExternal ? LbMaps.FlagExternal : 0) | (s.IsExternal && s.ExternalTrafficPolicy == TrafficPolicy.Local ? LbMaps.FlagExternalLocal : 0)),
            MaglevSize = table ? checked((ushort)maglevSize) : (ushort)0,
        };
        if (cur is null || old != newMaster)
        {
            maps.Services.Update(master, newMaster);
        }

        for (var slot = ids.Length + 1; cur is not null && slot <= cur.Slots.Length; slot++)
        {
            if (cur.Slots[slot - 1] != default)
            {
                maps.Services.Delete(master.WithSlot(slot));
            }
        }

        if (cur is not null && (old.Flags & LbMaps.FlagMaglev) != 0)
        {
            DeleteChunks(revNat, table ? Chunks(maglevSize) : 0, Chunks(old.MaglevSize));
        }

        if (cur is not null)
        {
            Release(cur.Members, pass);
            if (!cur.Members.IsSubsetOf(members))
            {
                pass.LostMembers[revNat] = members;
            }
        }

        var written = new Applied { Master = newMaster, Slots = slots, Members = members, HasTable = table, Desired = s, Seen = cur?.Seen ?? 0 };
        MarkSeen(written);
        _applied[master] = written;
    }

    /// <summary>Step 3: services written before that this sync's desired state no longer has.</summary>
    private void RemoveServices(Pass pass)
    {
        if (_seen == _applied.Count)
        {
            return; // every service written is in the desired state
        }

        foreach (var (master, a) in _applied.Where(e => e.Value.Seen != _syncs).ToList())
        {
            RemoveService(master, a, pass);
        }
    }

    /// <summary>One service no longer wanted: master first (the data path stops matching), then slots, rev-nat, table.</summary>
    private void RemoveService(LbServiceKey master, Applied a, Pass pass)
    {
        maps.Services.Delete(master);
        for (var slot = 1; slot <= a.Slots.Length; slot++)
        {
            if (a.Slots[slot - 1] != default)
            {
                maps.Services.Delete(master.WithSlot(slot));
            }
        }

        var revNat = a.Master.RevNatIndex;
        maps.ReverseNat.Delete(revNat);
        FreeRevNat(revNat);
        if (a.HasTable || (a.Master.Flags & LbMaps.FlagMaglev) != 0)
        {
            DeleteChunks(revNat, 0, Math.Max(Chunks(a.Master.MaglevSize), Chunks(maglevSize)));
        }

        Release(a.Members, pass);
        pass.LostMembers[revNat] = [];
        _applied.Remove(master);
    }

    /// <summary>Full pass only: slots whose master is gone, rev-nat entries and Maglev chunks no service names.</summary>
    private void SweepStrays(Pass pass)
    {
        foreach (var key in pass.OrphanSlots)
        {
            maps.Services.Delete(key);
        }

        var live = _applied.Values.ToDictionary(a => a.Master.RevNatIndex, a => a.HasTable);
        foreach (var idx in pass.KernelRevNat!.Keys.Where(i => !live.ContainsKey(i)))
        {
            maps.ReverseNat.Delete(idx);
            FreeRevNat(idx);
        }

        var chunks = Chunks(maglevSize);
        foreach (var key in maps.Maglev.Keys().Where(k => !live.GetValueOrDefault(k.RevNatIndex) || k.Chunk >= chunks))
        {
            maps.Maglev.Delete(key);
        }

        // Every service counts as having lost members: the affinity sweep checks all entries.
        foreach (var a in _applied.Values)
        {
            pass.LostMembers[a.Master.RevNatIndex] = a.Members;
        }
    }

    /// <summary>Step 4: backends no service references any more (any unreferenced one on a full pass).</summary>
    private HashSet<uint> RemoveBackends(Pass pass)
    {
        var removed = new HashSet<uint>();
        IEnumerable<uint> candidates = pass.Full ? _backends.Keys.ToList() : pass.Released;
        foreach (var id in candidates)
        {
            if (_backends.TryGetValue(id, out var b) && b.Refs == 0)
            {
                maps.Backends.Delete(id);
                _backends.Remove(id);
                if (_idOf.TryGetValue(b.Backend, out var current) && current == id)
                {
                    _idOf.Remove(b.Backend);
                }

                removed.Add(id);
            }
        }

        return removed;
    }

    /// <summary>Step 5: affinity entries of services that lost members (all of them on a full pass) naming a non-member.</summary>
    private void SweepAffinity(Pass pass)
    {
        if (pass.LostMembers.Count == 0 && !pass.Full)
        {
            return;
        }

        foreach (var (k, v) in maps.Affinity.Entries())
        {
            var known = pass.LostMembers.TryGetValue(k.RevNatIndex, out var members);
            if ((known && !members!.Contains(v.BackendId)) || (pass.Full && !known))
            {
                maps.Affinity.Delete(k);
            }
        }
    }

    /// <summary>
    /// Step 6: connection-tracking entries naming a removed backend, or a backend their service (frontend) lost, so a UDP
    /// flow picks a live backend on its next packet (kube-proxy's conntrack cleanup). A previous run's ids are reused
    /// after a restart: a stale flow must never land on a newcomer with a recycled id. A full pass also drops the entries
    /// of services that no longer exist (a sync that failed half-way left them).
    /// </summary>
    private void SweepConnTrack(HashSet<uint> removed, Pass pass)
    {
        if (removed.Count == 0 && pass.LostMembers.Count == 0)
        {
            return;
        }

        foreach (var (k, v) in maps.ConnTrack.Entries())
        {
            var known = pass.LostMembers.TryGetValue(v.RevNatIndex, out var members);
            if (removed.Contains(v.BackendId) || (known && !members!.Contains(v.BackendId)) || (pass.Full && !known))
            {
                maps.ConnTrack.Delete(k);
            }
        }
    }

    private void Release(HashSet<uint> members, Pass pass)
    {
        foreach (var id in members)
        {
            if (_backends.TryGetValue(id, out var b))
            {
                b.Refs--;
                pass.Released.Add(id);
            }
        }
    }

    /// <summary>
    /// Writes a service's Maglev table (by rev-nat index) computed over its backends' "ip:port" names, chunk by chunk
    /// (each chunk update is atomic; a table being rewritten mixes old and new chunks, all naming live backends).
    /// </summary>
    private void WriteMaglevTable(ushort revNat, List<(uint Id, LbBackend Backend)> members)
    {
        var table = Maglev.TableTruncated(members.Select(x => Maglev.Name(x.Backend.EndPoint.Address, x.Backend.EndPoint.Port)).ToArray(), maglevSize);
        for (var c = 0; c * LbMaps.MaglevChunk < maglevSize; c++)
        {
            var chunk = default(LbMaglevChunk);
            for (var i = 0; i < LbMaps.MaglevChunk && (c * LbMaps.MaglevChunk) + i < maglevSize; i++)
            {
                chunk[i] = members[table[(c * LbMaps.MaglevChunk) + i]].Id;
            }

            maps.Maglev.Update(new LbMaglevKey(revNat, c), chunk);
        }
    }

    private void DeleteChunks(ushort revNat, int from, int to)
    {
        for (var c = from; c < to; c++)
        {
            maps.Maglev.Delete(new LbMaglevKey(revNat, c));
        }
    }

    private static int Chunks(int size) => (size + LbMaps.MaglevChunk - 1) / LbMaps.MaglevChunk;

    /// <summary>The lowest free rev-nat index not in quarantine (kept across syncs and restarts by the service it names).</summary>
    private ushort AllocateRevNat()
    {
        for (var i = (int)_revNatFrom; i <= ushort.MaxValue; i++)
        {
            if (!_quarantine.Contains((ushort)i) && _revNats.Add((ushort)i))
            {
                _revNatFrom = (ushort)Math.Min(i + 1, ushort.MaxValue);
                return (ushort)i;
            }
        }

        throw new InvalidOperationException("out of reverse-NAT indexes (65535 service ports)");
    }

    /// <summary>Quarantines <paramref name="idx"/>: <see cref="Collected"/> frees it.</summary>
    private void FreeRevNat(ushort idx)
    {
        if (_revNats.Remove(idx))
        {
            _quarantine.Add(idx);
        }
    }

    /// <summary>What one service port's entries hold, as this instance wrote or read them.</summary>
    private sealed class Applied
    {
        public LbService Master { get; init; }

        /// <summary>Slot i + 1's value; default where the slot has no entry.</summary>
        public LbService[] Slots { get; set; } = [];

        /// <summary>Backend ids referenced (one reference per service, however many slots).</summary>
        public HashSet<uint> Members { get; set; } = [];

        public bool HasTable { get; set; }

        /// <summary>The desired state that produced the entries; null if read from the maps (compare entry by entry).</summary>
        public ServicePortState? Desired { get; init; }

        /// <summary>The last sync whose desired state has this service.</summary>
        public long Seen { get; set; }
    }

    private sealed class BackendRef(LbBackend backend)
    {
        public LbBackend Backend { get; } = backend;

        public int Refs { get; set; }
    }

    /// <summary>What one sync learned on the way: backends released, services that lost members, the maps' contents (full).</summary>
    private sealed class Pass(bool full)
    {
        public bool Full { get; } = full;

        public HashSet<uint> Released { get; } = [];

        /// <summary>Rev-nat index -> its current members, for services whose affinity entries need checking.</summary>
        public Dictionary<ushort, HashSet<uint>> LostMembers { get; } = [];

        public List<LbServiceKey> OrphanSlots { get; } = [];

        public Dictionary<ushort, LbReverseNat>? KernelRevNat { get; set; }

        public HashSet<ushort>? KernelTables { get; set; }

        /// <summary>A service's write failed half-way: memory no longer says what the maps hold, the next sync reads them.</summary>
        public bool Dirty { get; set; }
    }
}
