using System.Globalization;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Services.Ebpf;

/// <summary>What a sync does when a map is full: the service that does not fit is skipped, the rest of the pass goes on.</summary>
internal sealed partial class LbServiceSync
{
    private readonly List<ServiceSkip> _skipped = [];

    /// <summary>Frontends the last sync or update could not write because a map was full (code <c>map-full</c>).</summary>
    public IReadOnlyList<ServiceSkip> Skipped => _skipped;

    /// <summary>
    /// Takes the service's backend references (writing its new backends) and writes its entries, except that a full map
    /// (E2BIG / ENOSPC) skips the service instead of failing the pass. A new service's entries written so far are taken
    /// back and its references dropped, so nothing of it is left. A changed one keeps what was written (its old slots may
    /// point at new backends already, which must stay) and the pass is marked dirty. Either way the next sync is a full
    /// one (it reads the maps) and tries the service again: the agent's next change (e.g. a deletion making room) writes it.
    /// </summary>
    private void TryWriteService(LbServiceKey master, ServicePortState s, Pass pass)
    {
        var existed = _applied.ContainsKey(master);
        uint[]? ids = null;
        try
        {
            ids = AddBackends([new(master, s)])[0];
            WriteService(master, s, ids, pass);
        }
        catch (BpfException e) when (e.IsMapFull)
        {
            if (ids is null)
            {
                // lb4_backends filled half-way through this service's backends: those written have no reference yet.
                // (Between passes every backend has one; the step that removes unreferenced ones then takes them.)
                pass.Released.UnionWith(_backends.Where(b => b.Value.Refs == 0).Select(b => b.Key));
            }
            else if (existed)
            {
                pass.Dirty = true;
            }
            else
            {
                Unwrite(master, ids, pass);
            }

            var map = e.Subject.Length > 0 ? e.Subject : "an lb4 map";
            var limit = LimitOf(map) is { } max ? string.Create(CultureInfo.InvariantCulture, $" ({max} entries)") : "";
            _skipped.Add(ServiceModel.Reason(s, "map-full",
                $"not written: {map} is full{limit}; {(existed ? "it keeps its previous entries until the map has room" : "no traffic is served")}; raise the map size (bpfMapSizes)"));
        }
    }

    /// <summary>Takes back a new service's entries (slots, master, rev-nat, Maglev chunks) and its backend references.</summary>
    private void Unwrite(LbServiceKey master, uint[] ids, Pass pass)
    {
        maps.Services.Delete(master);
        for (var slot = 1; slot <= ids.Length; slot++)
        {
            maps.Services.Delete(master.WithSlot(slot));
        }

        // The index it was given: the one in use by no written service (nor reserved for a stray of the maps).
        var used = _applied.Values.Select(a => a.Master.RevNatIndex).ToHashSet();
        foreach (var revNat in _revNats.Where(r => !used.Contains(r) && pass.KernelRevNat?.ContainsKey(r) != true).ToList())
        {
            maps.ReverseNat.Delete(revNat);
            DeleteChunks(revNat, 0, Chunks(maglevSize));
            FreeRevNat(revNat);
        }

        Release([.. ids], pass);
    }

    private uint? LimitOf(string map) => map switch
    {
        LbMaps.Services => maps.Services.MaxEntries,
        LbMaps.Backends => maps.Backends.MaxEntries,
        LbMaps.ReverseNat => maps.ReverseNat.MaxEntries,
        LbMaps.Maglev => maps.Maglev.MaxEntries,
        _ => null,
    };
}
