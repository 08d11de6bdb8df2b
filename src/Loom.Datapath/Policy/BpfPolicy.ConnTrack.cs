using Loom.Linux.Bpf;

namespace Loom.Datapath.Policy;

/// <summary>The policy's connection table (pol_ct), for inspection and for forgetting a deleted endpoint's flows.</summary>
public sealed partial class BpfPolicy
{
    /// <summary>The tracked flows: each the tuple as its first allowed packet had it, the direction, the endpoint.</summary>
    public IReadOnlyList<KeyValuePair<PolCtKey, PolCtValue>> Connections() =>
        _obj.Loaded.Map<PolCtKey, PolCtValue>(PolicyMaps.ConnTrack).Entries();

    /// <summary>
    /// Deletes the flows recorded for an endpoint (a deleted pod: its address may come back on another pod, which must
    /// not inherit them). Returns how many were deleted.
    /// </summary>
    public int ForgetConnections(uint epId)
    {
        var map = _obj.Loaded.Map<PolCtKey, PolCtValue>(PolicyMaps.ConnTrack);
        var deleted = 0;
        foreach (var (key, value) in map.Entries())
        {
            if (value.EndpointId == epId && map.Delete(key))
            {
                deleted++;
            }
        }

        return deleted;
    }
}
