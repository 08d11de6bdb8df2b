using System.Text;

namespace Loom.Datapath.Services;

/// <summary>
/// kube-proxy's nftables mode: one <c>nft -f</c> transaction per sync in the caller's namespace, computed against
/// <c>nft -j list table ip kube-proxy</c>. The first sync of an instance re-declares the skeleton and rewrites every
/// service chain (adopting a previous run's table without dropping a packet); later ones touch only what changed.
/// </summary>
internal sealed class NftablesServiceBackend(ServiceProxyOptions options) : IServiceBackend
{
    private readonly Dictionary<string, ServicePortState> _applied = new(StringComparer.Ordinal);
    private bool _needFullSync = true;

    public string Name => "nftables";

    /// <summary>The script of the last sync (for tests and debugging).</summary>
    public string? LastScript { get; private set; }

    public void Sync(IReadOnlyCollection<ServicePortState> desired)
    {
        ArgumentNullException.ThrowIfNull(desired);
        var existing = NftSnapshot.Parse(Nft.ListTable(NftablesRules.Table, json: true));
        var full = _needFullSync || !existing.Exists;
        bool Rewrite(ServicePortState s) =>
            full
            || !_applied.TryGetValue(NftablesRules.ServiceChain(s), out var prev)
            || !prev.Equals(s)
            || !NftablesRules.ChainsOf(s).All(existing.Chains.Contains);

        var script = NftablesRules.Render(desired, Rewrite, existing, full, options);
        if (script.Length > 0)
        {
            try
            {
                Nft.Apply(script);
            }
            catch
            {
                _needFullSync = true;
                throw;
            }
        }

        LastScript = script;
        _needFullSync = false;
        _applied.Clear();
        foreach (var s in desired)
        {
            _applied[NftablesRules.ServiceChain(s)] = s;
        }
    }

    public void Flush()
    {
        if (Nft.ListTable(NftablesRules.Table, json: true) is not null)
        {
            Nft.Apply($"delete table ip {NftablesRules.Table}\n");
        }

        _applied.Clear();
        _needFullSync = true;
    }

    public string Explain(ServicePortState service)
    {
        ArgumentNullException.ThrowIfNull(service);
        var existing = NftSnapshot.Parse(Nft.ListTable(NftablesRules.Table, json: true));
        var text = Nft.ListTable(NftablesRules.Table, json: false) ?? string.Empty;
        var key = NftablesRules.ElementKey(service.Frontend);
        var sb = new StringBuilder();
        foreach (var map in new[] { NftablesRules.ServiceIpsMap, NftablesRules.NoEndpointServicesMap })
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
