using System.Globalization;
using System.Text;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Services.Ebpf;

public sealed partial class EbpfServiceBackend
{
    /// <summary>The service port's entries: its ClusterIP frontend, then each node-port and external-IP frontend.</summary>
    public string Explain(ServicePortState service)
    {
        ArgumentNullException.ThrowIfNull(service);
        var sb = new StringBuilder();
        foreach (var frontend in Frontends(service))
        {
            ExplainFrontend(sb, frontend);
        }

        if (service.IsExternal)
        {
            var dev = _options.NodePortInterface is { } d ? $"{d} ({LbMaps.FromNet} ingress, {LbMaps.ToNet} egress)" : "none (no NodePortInterface)";
            sb.Append(CultureInfo.InvariantCulture, $"external traffic ({service.ExternalTrafficPolicy}) from the underlay: {dev}\n");
        }

        return sb.ToString();
    }

    private void ExplainFrontend(StringBuilder sb, ServicePortState service)
    {
        var obj = EnsureLoaded();
        var svcMap = obj.Map<LbServiceKey, LbService>(LbMaps.Services);
        var beMap = obj.Map<uint, LbBackend>(LbMaps.Backends);
        var rnMap = obj.Map<ushort, LbReverseNat>(LbMaps.ReverseNat);
        var master = MasterKey(service.Frontend);
        var inv = CultureInfo.InvariantCulture;
        var kind = service.NodePort != 0 ? "node port" : service.ExternalIps.Count > 0 ? "external IP" : "ClusterIP";
        sb.Append(inv, $"{LbMaps.Services} {service.Frontend} ({service.Name}, {kind})\n");
        if (!svcMap.TryLookup(master, out var m))
        {
            sb.Append("  (no entry)\n");
            return;
        }

        var affinity = (m.Flags & LbMaps.FlagAffinity) != 0 ? $" affinity ClientIP timeout {m.BackendId}s" : "";
        var policy = (m.Flags & LbMaps.FlagExternal) == 0 ? "" : (m.Flags & LbMaps.FlagExternalLocal) != 0 ? " external, Local (client address kept)" : " external, Cluster (remote backends: SNAT to the node)";
        sb.Append(inv, $"  slot 0 (master): count {m.Count} rev-nat {m.RevNatIndex} flags 0x{m.Flags:x2}{affinity}{policy}\n");
        if (m.Count == 0)
        {
            sb.Append((m.Flags & LbMaps.FlagExternal) != 0
                ? "  no backends: dropped from the underlay (no service backend), refused from pods and the node\n"
                : "  no backends: TCP SYN answered with RST (tc), connect()/sendmsg() fail with EPERM (socket LB)\n");
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
}
