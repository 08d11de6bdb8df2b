using System.Globalization;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Services.Ebpf;

/// <summary>
/// Capacities (max_entries) of the lb4 maps, set when the object is loaded; the defaults are lb4.c's. A pinned map of
/// another capacity from an earlier run is recreated at the new size and its entries copied over (as many as fit; see
/// <see cref="BpfObject.ReplacedMaps"/>). Hash maps cost kernel memory per entry in use (lb4_maglev, not preallocated)
/// or per slot up front (the others), so raise them for a large node and lower them for a small one. Settable (not
/// init-only) so agent.json's source-generated reader keeps the defaults of the sizes it does not name.
/// </summary>
public sealed record LbMapSizes
{
    /// <summary>Smallest accepted capacity: below it a map is full before any real use.</summary>
    public const int Min = 16;

    /// <summary>Largest accepted capacity (16 Mi entries: lb4_ct at this size is about 1 GiB of kernel memory).</summary>
    public const int Max = 1 << 24;

    /// <summary>lb4_svc: one entry per frontend plus one per backend slot of it.</summary>
    public int Services { get; set; } = 65536;

    /// <summary>lb4_backends: distinct backends (address, port, protocol) across all services.</summary>
    public int Backends { get; set; } = 65536;

    /// <summary>lb4_ct (LRU): tracked flows of the per-packet path; the oldest are evicted when full.</summary>
    public int ConnTrack { get; set; } = 262144;

    /// <summary>lb4_affinity (LRU): ClientIP session-affinity entries.</summary>
    public int Affinity { get; set; } = 65536;

    /// <summary>lb4_snat (LRU): node-port flows sent on to a backend on another node.</summary>
    public int Snat { get; set; } = 262144;

    /// <summary>lb4_ifaces: interfaces the tc programs are attached to (pod veths and the underlay).</summary>
    public int Interfaces { get; set; } = 16384;

    /// <summary>lb4_maglev: 256-slot chunks of Maglev tables (64 per service at the default table size).</summary>
    public int Maglev { get; set; } = 65536;

    /// <summary>Each map: the setting's name (as agent.json spells it), the map's name, its capacity.</summary>
    public IEnumerable<(string Setting, string Map, int MaxEntries)> ByMap() =>
    [
        ("services", LbMaps.Services, Services), ("backends", LbMaps.Backends, Backends), ("connTrack", LbMaps.ConnTrack, ConnTrack),
        ("affinity", LbMaps.Affinity, Affinity), ("snat", LbMaps.Snat, Snat), ("interfaces", LbMaps.Interfaces, Interfaces),
        ("maglev", LbMaps.Maglev, Maglev),
    ];

    /// <summary>Throws <see cref="ArgumentException"/> naming the first capacity outside [<see cref="Min"/>, <see cref="Max"/>].</summary>
    public void Validate()
    {
        foreach (var (setting, map, size) in ByMap())
        {
            if (size is < Min or > Max)
            {
                throw new ArgumentException(
                    string.Create(CultureInfo.InvariantCulture, $"map size {setting} ({map}) must be between {Min} and {Max}; got {size}"));
            }
        }
    }

    /// <summary>Sets each map's capacity on an opened, not yet loaded lb4 object.</summary>
    internal void Apply(BpfObject obj)
    {
        foreach (var (_, map, size) in ByMap())
        {
            obj.SetMaxEntries(map, (uint)size);
        }
    }
}
