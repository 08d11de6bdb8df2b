using System.Text;

namespace Loom.Datapath.Services;

/// <summary>
/// kube-proxy's nftables mode: one <c>nft -f</c> transaction per sync in the caller's namespace. The first sync of an
/// instance reads the kernel (<c>nft -j list table ip kube-proxy</c>), re-declares the skeleton and rewrites every
/// service chain (adopting a previous run's table without dropping a packet). Like kube-proxy, the instance then keeps
/// what it applied in memory: later syncs list nothing and touch only what changed. A failed apply, a
/// <see cref="Flush"/> or <see cref="AppliedServices.FullSyncPeriod"/> elapsing makes the next sync a full one again.
/// </summary>
internal sealed partial class NftablesServiceBackend : IServiceBackend
{
    private readonly ServiceProxyOptions _options;
    private readonly NftNameCache _names = new();
    private readonly AppliedServices _applied;

    public NftablesServiceBackend(ServiceProxyOptions options)
    {
        _options = options;
        _applied = new(s => _names.Get(s).Service);
    }

    public string Name => "nftables";

    /// <summary>The ports the last sync left out or adjusted, one line each (see <see cref="ServiceModel.Renderable"/>).</summary>
    public IReadOnlyList<string> LastSkipped { get; private set; } = [];

    /// <summary>Keep <see cref="LastScript"/> (tests): off in the agent, where a full sync's script for 10,000 services
    /// would otherwise stay live, megabytes of text, until the next sync.</summary>
    public bool KeepLastInput { get; init; }

    /// <summary>The script of the last sync, when <see cref="KeepLastInput"/> is set (for tests and debugging).</summary>
    public string? LastScript { get; private set; }

    /// <summary>Whether the last sync was a full one (read the kernel, rewrote every chain).</summary>
    public bool LastSyncWasFull { get; private set; }

    public void Sync(IReadOnlyCollection<ServicePortState> given)
    {
        ArgumentNullException.ThrowIfNull(given);
        // Filtered here as the renderer would, so what is recorded as applied is what was rendered.
        var skipped = new List<ServiceSkip>();
        var desired = ServiceModel.Renderable(given, skipped);
        LastSkipped = skipped.ConvertAll(s => s.Text);
        var full = _applied.FullSyncDue;
        var existing = full ? NftSnapshot.Parse(Nft.ListTable(NftablesRules.Table, json: true)) : Applied();
        bool Rewrite(ServicePortState s) => _applied.NeedsRewrite(s, full);

        var script = NftablesRules.Render(desired, Rewrite, existing, full, _options, _names.Get);
        if (script.Length > 0)
        {
            try
            {
                Nft.Apply(script);
            }
            catch
            {
                // What the kernel holds is unknown now; read it and rewrite everything next time, as kube-proxy does.
                _applied.Forget();
                throw;
            }
        }

        LastScript = KeepLastInput ? script : null;
        LastSyncWasFull = full;
        _applied.Record(desired, full);
        _names.Keep(desired);
    }

    // What the last successful sync left in the table: the chains, affinity sets and map elements of _applied.
    private NftSnapshot Applied()
    {
        var snap = NftSnapshot.Known();
        foreach (var s in _applied.Services)
        {
            var names = _names.Get(s);
            snap.Chains.UnionWith(names.Chains);
            foreach (var set in names.AffinitySets)
            {
                snap.Sets[set] = s.AffinityTimeoutSeconds;
            }
        }

        // What was applied went through the renderer's filter, so it is already in render order.
        foreach (var (map, elements) in NftablesRules.Elements(ServiceModel.Renderable(_applied.Services, null), _names.Get))
        {
            snap.Maps[map] = elements.ToDictionary(e => e.Key, e => e.Value.Verdict, StringComparer.Ordinal);
        }

        return snap;
    }

    public void Flush()
    {
        if (Nft.TableExists(NftablesRules.Table))
        {
            Nft.Apply($"delete table ip {NftablesRules.Table}\n");
        }

        _applied.Forget();
    }

    public string Explain(ServicePortState service)
    {
        ArgumentNullException.ThrowIfNull(service);
        var existing = NftSnapshot.Parse(Nft.ListTable(NftablesRules.Table, json: true));
        var text = Nft.ListTable(NftablesRules.Table, json: false) ?? string.Empty;
        var keys = new List<(string Map, string Key)> { (NftablesRules.ServiceIpsMap, NftablesRules.ElementKey(service.Frontend)), (NftablesRules.NoEndpointServicesMap, NftablesRules.ElementKey(service.Frontend)) };
        foreach (var ip in service.ExternalIps)
        {
            var key = NftablesRules.ElementKey(service.Frontend with { Address = ip });
            keys.Add((NftablesRules.ServiceIpsMap, key));
            keys.Add((NftablesRules.NoEndpointServicesMap, key));
        }

        if (service.NodePort != 0)
        {
            keys.Add((NftablesRules.ServiceNodePortsMap, NftablesRules.NodePortKey(service)));
            keys.Add((NftablesRules.NoEndpointNodePortsMap, NftablesRules.NodePortKey(service)));
        }

        var sb = new StringBuilder();
        foreach (var (map, key) in keys)
        {
            if (existing.Elements(map).TryGetValue(key, out var verdict))
            {
                sb.Append("element ").Append(map).Append(" { ").Append(key).Append(" : ").Append(verdict).Append(" }\n");
            }
        }

        foreach (var chain in NftablesRules.ChainsOf(service).Where(existing.Chains.Contains))
        {
            sb.Append(ChainBlock(text, chain));
        }

        return sb.Length == 0 ? $"# {service.Name} ({service.Frontend}): nothing programmed\n" : sb.ToString();
    }

    // The "chain NAME { ... }" block of `nft list table` output, rules as nft prints them.
    private static string ChainBlock(string listing, string chain)
    {
        var lines = listing.Split('\n');
        var start = Array.FindIndex(lines, l => l.Trim() == $"chain {chain} {{");
        if (start < 0)
        {
            return string.Empty;
        }

        var sb = new StringBuilder();
        for (var i = start; i < lines.Length; i++)
        {
            sb.Append(lines[i].Trim()).Append('\n');
            if (lines[i].Trim() == "}")
            {
                break;
            }
        }

        return sb.ToString();
    }
}
