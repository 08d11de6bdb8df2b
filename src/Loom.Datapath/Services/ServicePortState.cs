using Loom.Core.Model;

namespace Loom.Datapath.Services;

/// <summary>
/// Everything a backend needs to program one service port: its name, frontend, affinity and the ready backends in a
/// stable order. Equality is by value (backends included), so "changed since the last sync" is a plain comparison.
/// </summary>
public sealed record ServicePortState(
    ServicePortName Name,
    Frontend Frontend,
    SessionAffinity SessionAffinity,
    int AffinityTimeoutSeconds,
    IReadOnlyList<BackendAddress> Backends)
{
    public bool HasBackends => Backends.Count > 0;

    public bool Equals(ServicePortState? other) =>
        other is not null
        && Name == other.Name
        && Frontend == other.Frontend
        && SessionAffinity == other.SessionAffinity
        && AffinityTimeoutSeconds == other.AffinityTimeoutSeconds
        && Backends.SequenceEqual(other.Backends);

    public override int GetHashCode()
    {
        var h = new HashCode();
        h.Add(Name);
        h.Add(Frontend);
        h.Add(SessionAffinity);
        h.Add(AffinityTimeoutSeconds);
        foreach (var b in Backends)
        {
            h.Add(b);
        }

        return h.ToHashCode();
    }
}
