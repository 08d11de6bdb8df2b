using Loom.Linux.Bpf;

namespace Loom.Datapath.Services.Ebpf;

public sealed partial class EbpfServiceBackend
{
    /// <summary>The last GC pass's result (null before the first).</summary>
    public LbConntrackGcResult? LastCollection { get; private set; }

    /// <summary>When the last GC pass ran.</summary>
    public DateTimeOffset? LastCollectionAt { get; private set; }

    /// <summary>
    /// One GC pass over lb4_ct and lb4_snat (<see cref="LbConntrackGc"/>) with the options' lifetimes; then rev-nat
    /// indexes no entry names any more leave quarantine. Call it where syncs are called (not concurrently with them).
    /// </summary>
    public LbConntrackGcResult CollectConntrack()
    {
        var obj = EnsureLoaded();
        var gc = new LbConntrackGc(obj.Map<LbCtKey, LbCtEntry>(LbMaps.ConnTrack), obj.Map<LbCtKey, LbSnatEntry>(LbMaps.Snat),
            obj.Map<ushort, LbReverseNat>(LbMaps.ReverseNat), _options.ConnTrack);
        var result = gc.Run();
        _sync?.Collected(result.RevNatInUse);
        LastCollection = result;
        LastCollectionAt = DateTimeOffset.UtcNow;
        return result;
    }
}
