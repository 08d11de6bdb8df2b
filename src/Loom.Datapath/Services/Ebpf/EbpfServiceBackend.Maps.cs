using Loom.Linux.Bpf;

namespace Loom.Datapath.Services.Ebpf;

public sealed partial class EbpfServiceBackend
{
    private static void ClearAll(BpfObject obj)
    {
        obj.Map<LbServiceKey, LbService>(LbMaps.Services).Clear();
        obj.Map<uint, LbBackend>(LbMaps.Backends).Clear();
        obj.Map<ushort, LbReverseNat>(LbMaps.ReverseNat).Clear();
        obj.Map<LbCtKey, LbCtEntry>(LbMaps.ConnTrack).Clear();
        obj.Map<LbAffinityKey, LbAffinityValue>(LbMaps.Affinity).Clear();
        obj.Map<uint, uint>(LbMaps.Interfaces).Clear();
        obj.Map<LbMaglevKey, LbMaglevChunk>(LbMaps.Maglev).Clear();
        obj.Map<LbCtKey, LbSnatEntry>(LbMaps.Snat).Clear();
        obj.Map(LbMaps.SocketReverse).As<SkRevKey, SkRevValue>().Clear();
        // The moment the programs took over (since_ns) goes too: after a switch back to eBPF, flows kube-proxy's DNAT
        // opened meanwhile are again left to the kernel for an established lifetime.
        obj.Map<uint, LbConfig>(LbMaps.Config).Update(0, default);
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
}

/// <summary>The lb4 maps a service sync writes, as interfaces so the sync can run against in-memory maps in tests.</summary>
internal sealed record LbMapSet(
    IBpfMap<LbServiceKey, LbService> Services,
    IBpfMap<uint, LbBackend> Backends,
    IBpfMap<ushort, LbReverseNat> ReverseNat,
    IBpfMap<LbMaglevKey, LbMaglevChunk> Maglev,
    IBpfMap<LbAffinityKey, LbAffinityValue> Affinity,
    IBpfMap<LbCtKey, LbCtEntry> ConnTrack,
    IBpfMap<LbCtKey, LbSnatEntry>? Snat = null)
{
    public static LbMapSet Of(BpfObject obj) => new(
        obj.Map<LbServiceKey, LbService>(LbMaps.Services),
        obj.Map<uint, LbBackend>(LbMaps.Backends),
        obj.Map<ushort, LbReverseNat>(LbMaps.ReverseNat),
        obj.Map<LbMaglevKey, LbMaglevChunk>(LbMaps.Maglev),
        obj.Map<LbAffinityKey, LbAffinityValue>(LbMaps.Affinity),
        obj.Map<LbCtKey, LbCtEntry>(LbMaps.ConnTrack),
        obj.Map<LbCtKey, LbSnatEntry>(LbMaps.Snat));
}
