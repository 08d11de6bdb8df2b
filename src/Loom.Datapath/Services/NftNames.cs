using Loom.Core.Model;

namespace Loom.Datapath.Services;

/// <summary>
/// The nft names of one service port: its service (Cluster policy), local (Local policy) and external chains, and per
/// endpoint its chain and (with ClientIP affinity) its set; which of them the service uses (kube-proxy's
/// <see cref="EndpointCategories"/>). Each name is a SHA-256 (kube-proxy's hash prefix), so a render computes them
/// once per service, not per rule.
/// </summary>
internal sealed class NftNames
{
    public NftNames(ServicePortState s)
    {
        ArgumentNullException.ThrowIfNull(s);
        Categories = new EndpointCategories(s);
        Service = NftablesRules.ServiceChain(s);
        Local = KubeProxyNames.NftLocalChain(s.Name, s.Frontend.ProtocolName);
        External = KubeProxyNames.NftExternalChain(s.Name, s.Frontend.ProtocolName);
        Endpoints = s.Backends.Select(b => NftablesRules.EndpointChain(s, b)).ToArray();
        var reachable = Categories.Reachable.ToHashSet();
        var used = Enumerable.Range(0, s.Backends.Count).Where(i => reachable.Contains(s.Backends[i])).ToArray();
        Affinity = s.SessionAffinity == SessionAffinity.ClientIP ? s.Backends.Select(b => NftablesRules.AffinitySet(s, b)).ToArray() : [];
        AffinitySets = Affinity.Count > 0 ? used.Select(i => Affinity[i]).ToArray() : [];
        var chains = new List<string>();
        if (Categories.UsesExternalChain)
        {
            chains.Add(External);
        }

        if (Categories.UsesCluster)
        {
            chains.Add(Service);
        }

        if (Categories.UsesLocal)
        {
            chains.Add(Local);
        }

        chains.AddRange(used.Select(i => Endpoints[i]));
        Chains = chains;
    }

    public EndpointCategories Categories { get; }

    /// <summary>The Cluster policy's chain (<c>service-</c>).</summary>
    public string Service { get; }

    /// <summary>The Local policy's chain (<c>local-</c>).</summary>
    public string Local { get; }

    /// <summary>Node-port and external-IP traffic's chain (<c>external-</c>).</summary>
    public string External { get; }

    /// <summary>Where ClusterIP traffic goes: the Local policy's chain under internalTrafficPolicy Local.</summary>
    public string Internal => Categories.InternalLocal ? Local : Service;

    /// <summary>In the order of the service's backends, whether a policy reaches them or not.</summary>
    public IReadOnlyList<string> Endpoints { get; }

    /// <summary>In the order of the service's backends; empty without ClientIP affinity.</summary>
    public IReadOnlyList<string> Affinity { get; }

    /// <summary>One per endpoint a policy reaches, in the order of the service's backends; empty without ClientIP affinity.</summary>
    public IReadOnlyList<string> AffinitySets { get; }

    /// <summary>The chains the service owns when programmed (none without backends).</summary>
    public IReadOnlyList<string> Chains { get; }
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
