using Loom.Core.Model;

namespace Loom.Datapath.Services;

/// <summary>
/// The nft names of one service port: its service chain, and per endpoint its chain and (with ClientIP affinity) its
/// set. Each name is a SHA-256 (kube-proxy's hash prefix), so a render computes them once per service, not per rule.
/// </summary>
internal sealed class NftNames
{
    public NftNames(ServicePortState s)
    {
        ArgumentNullException.ThrowIfNull(s);
        Service = NftablesRules.ServiceChain(s);
        Endpoints = s.Backends.Select(b => NftablesRules.EndpointChain(s, b)).ToArray();
        AffinitySets = s.SessionAffinity == SessionAffinity.ClientIP ? s.Backends.Select(b => NftablesRules.AffinitySet(s, b)).ToArray() : [];
    }

    public string Service { get; }

    /// <summary>In the order of the service's backends.</summary>
    public IReadOnlyList<string> Endpoints { get; }

    /// <summary>In the order of the service's backends; empty without ClientIP affinity.</summary>
    public IReadOnlyList<string> AffinitySets { get; }

    /// <summary>The chains the service owns when programmed (none without backends).</summary>
    public IEnumerable<string> Chains => Endpoints.Count > 0 ? Endpoints.Prepend(Service) : [];
}

/// <summary>
/// <see cref="NftNames"/> kept from one sync to the next, keyed by the whole service state (value equality), so a
/// sync hashes only the services that changed; entries for services no longer desired are dropped by <see cref="Keep"/>.
/// </summary>
internal sealed class NftNameCache
{
    private Dictionary<ServicePortState, NftNames> _names = [];

    public NftNames Get(ServicePortState s)
    {
        if (!_names.TryGetValue(s, out var n))
        {
            n = new NftNames(s);
            _names[s] = n;
        }

        return n;
    }

    /// <summary>Keeps only the entries of <paramref name="services"/>.</summary>
    public void Keep(IEnumerable<ServicePortState> services)
    {
        var kept = new Dictionary<ServicePortState, NftNames>();
        foreach (var s in services)
        {
            kept[s] = Get(s);
        }

        _names = kept;
    }
}
