using System.Diagnostics;
using System.Globalization;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Services.Ebpf;

/// <summary>How full one lb4 map is: entries in it and its capacity.</summary>
public sealed record LbMapFill(string Map, long Entries, uint MaxEntries)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Map} {Entries:N0}/{MaxEntries:N0}");
}

public sealed partial class EbpfServiceBackend
{
    /// <summary>How long a fill-level count is reused: counting walks every key (lb4_ct at 262144 entries: ~262k syscalls, about a second).</summary>
    public static readonly TimeSpan FillInterval = TimeSpan.FromSeconds(15);

    private static readonly string[] FillMaps =
    [
        LbMaps.Services, LbMaps.Backends, LbMaps.ReverseNat, LbMaps.Maglev, LbMaps.ConnTrack, LbMaps.Affinity, LbMaps.SocketReverse,
        LbMaps.Snat, LbMaps.Interfaces,
    ];

    private IReadOnlyList<LbMapFill>? _fill;
    private long _fillAt;

    /// <summary>True once lb4.o is loaded (its maps exist); <see cref="MapFill"/> would load it otherwise.</summary>
    public bool IsLoaded => _obj is not null;

    /// <summary>
    /// Each lb4 map's entries / max entries, counted at most every <paramref name="maxAge"/> (default
    /// <see cref="FillInterval"/>); between counts the last one is returned.
    /// </summary>
    public IReadOnlyList<LbMapFill> MapFill(TimeSpan? maxAge = null)
    {
        if (_fill is not null && _obj is not null && Stopwatch.GetElapsedTime(_fillAt) < (maxAge ?? FillInterval))
        {
            return _fill;
        }

        var obj = EnsureLoaded();
        _fill = [.. FillMaps.Select(name =>
        {
            var m = obj.Map(name);
            return new LbMapFill(name, m.CountKeys(), m.MaxEntries);
        })];
        _fillAt = Stopwatch.GetTimestamp();
        return _fill;
    }

    /// <summary>The last sync's services that did not fit a full map (code <c>map-full</c>), as ServiceSkip records.</summary>
    public IReadOnlyList<ServiceSkip> Skipped => _sync?.Skipped ?? [];

    /// <summary>Texts of <see cref="Skipped"/>, as the rule backends' LastSkipped.</summary>
    public IReadOnlyList<string> LastSkipped => [.. Skipped.Select(s => s.Text)];
}
