using Loom.Core.Model;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Services.Ebpf;

public sealed partial class EbpfServiceBackend
{
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
}
