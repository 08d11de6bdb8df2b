using System.Net;
using Loom.Core.Model;
using Loom.Core.Policy;

namespace Loom.Agent.Policy;

/// <summary>What the flow log names addresses with: the caches and the last pass's ipcache and identities, shared rather than watched twice.</summary>
internal sealed partial class PolicyController
{
    /// <summary>The ipcache and the identities' label sets of the last pass; <see cref="Version"/> grows with each pass.</summary>
    internal sealed record PolicyNames(IReadOnlyDictionary<IPNetwork, uint> Ipcache, IReadOnlyDictionary<uint, SecurityLabels> Identities, long Version);

    internal PolicyNames Names { get; private set; } = new(new Dictionary<IPNetwork, uint>(), new Dictionary<uint, SecurityLabels>(), 0);

    /// <summary>Every endpoint and node in the cluster as the caches hold them now (empty before the start).</summary>
    internal (IEnumerable<Endpoint> Endpoints, IEnumerable<Node> Nodes) Objects() =>
        (_endpoints?.Snapshot.Values.Select(v => v.Value) ?? [], _nodes?.Snapshot.Values.Select(v => v.Value) ?? []);
}
