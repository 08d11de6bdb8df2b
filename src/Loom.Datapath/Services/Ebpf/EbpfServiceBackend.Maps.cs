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
}
