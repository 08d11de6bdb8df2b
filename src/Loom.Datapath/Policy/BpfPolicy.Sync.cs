using System.Net;
using Loom.Core.Policy;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Policy;

/// <summary>
/// Writing the identity cache and the endpoints' allow entries as diffs: what the maps hold is read once (a full walk,
/// which is also how a restarted agent adopts them) and kept in memory after, so a sync that changes nothing makes no
/// syscall. New entries go in before stale ones go out: a change never denies, even briefly, what both versions allow.
/// </summary>
public sealed partial class BpfPolicy
{
    private Dictionary<PolIpKey, PolIdentity>? _ipcache;
    private Dictionary<uint, HashSet<PolRuleKey>>? _rules;
    private Dictionary<uint, Dictionary<PolCidrKey, uint>>? _cidrs;

    /// <summary>
    /// Makes pol_ipcache hold exactly <paramref name="identities"/> (IPv4 prefix -> identity: pod /32s, node addresses as
    /// Host or RemoteNode). Addresses it does not cover are World. All prefixes are checked before anything is written.
    /// </summary>
    public void SyncIpcache(IReadOnlyDictionary<IPNetwork, uint> identities)
    {
        ArgumentNullException.ThrowIfNull(identities);
        var want = new Dictionary<PolIpKey, PolIdentity>();
        foreach (var (prefix, identity) in identities)
        {
            want[PolicyKeys.Ipcache(prefix)] = new PolIdentity(identity, 0);
        }

        var map = _obj.Loaded.Map<PolIpKey, PolIdentity>(PolicyMaps.Ipcache);
        var have = _ipcache ??= map.Entries().ToDictionary(e => e.Key, e => e.Value);
        foreach (var (key, value) in want)
        {
            if (!have.TryGetValue(key, out var old) || old != value)
            {
                map.Update(key, value);
                have[key] = value;
            }
        }

        foreach (var key in have.Keys.Where(k => !want.ContainsKey(k)).ToList())
        {
            map.Delete(key);
            have.Remove(key);
        }
    }

    /// <summary>
    /// Makes the maps hold exactly these allow entries and ipBlock regions for endpoint <paramref name="epId"/>. Every
    /// entry is checked (IPv4, port prefixes, CIDR identities, no prefix given two identities) before anything is written.
    /// </summary>
    public void SyncEndpointRules(uint epId, IReadOnlyCollection<PolicyRule> rules, IReadOnlyCollection<PolicyCidr> cidrs)
    {
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(cidrs);
        PolicyKeys.CheckEndpointId(epId);
        var wantRules = rules.Select(r => PolicyKeys.Rule(epId, r)).ToHashSet();
        var wantCidrs = new Dictionary<PolCidrKey, uint>();
        foreach (var c in cidrs)
        {
            var key = PolicyKeys.Cidr(epId, c);
            if (wantCidrs.TryGetValue(key, out var other) && other != c.Identity)
            {
                throw new ArgumentException($"ipBlock {c.Prefix} ({c.Direction}) is given two identities, {other} and {c.Identity}", nameof(cidrs));
            }

            wantCidrs[key] = c.Identity;
        }

        var ruleMap = _obj.Loaded.Map<PolRuleKey, uint>(PolicyMaps.Rules);
        var cidrMap = _obj.Loaded.Map<PolCidrKey, uint>(PolicyMaps.Cidrs);
        var haveRules = RulesOf(epId);
        var haveCidrs = CidrsOf(epId);
        foreach (var (key, identity) in wantCidrs)
        {
            if (!haveCidrs.TryGetValue(key, out var old) || old != identity)
            {
                cidrMap.Update(key, identity);
                haveCidrs[key] = identity;
            }
        }

        foreach (var key in wantRules.Where(k => !haveRules.Contains(k)))
        {
            ruleMap.Update(key, 0u);
            haveRules.Add(key);
        }

        foreach (var key in haveRules.Where(k => !wantRules.Contains(k)).ToList())
        {
            ruleMap.Delete(key);
            haveRules.Remove(key);
        }

        foreach (var key in haveCidrs.Keys.Where(k => !wantCidrs.ContainsKey(k)).ToList())
        {
            cidrMap.Delete(key);
            haveCidrs.Remove(key);
        }
    }

    /// <summary>Deletes every allow entry and ipBlock region of an endpoint (its traffic then is denied where enforced).</summary>
    public void RemoveEndpointRules(uint epId)
    {
        SyncEndpointRules(epId, [], []);
        _rules?.Remove(epId);
        _cidrs?.Remove(epId);
    }

    /// <summary>What the maps hold for an endpoint, read from the kernel (not from this instance's memory).</summary>
    public PolicyEndpointEntries ReadEndpoint(uint epId)
    {
        var rules = _obj.Loaded.Map<PolRuleKey, uint>(PolicyMaps.Rules).Keys()
            .Where(k => k.EndpointId == epId).Select(PolicyKeys.Rule)
            .OrderBy(r => r.Direction).ThenBy(r => r.Identity).ThenBy(r => r.Protocol).ThenBy(r => r.Port).ThenBy(r => r.PortPrefixBits).ToList();
        var cidrs = _obj.Loaded.Map<PolCidrKey, uint>(PolicyMaps.Cidrs).Entries()
            .Where(e => e.Key.EndpointId == epId).Select(e => PolicyKeys.Cidr(e.Key, e.Value))
            .OrderBy(c => c.Direction).ThenBy(c => c.Identity).ToList();
        return new PolicyEndpointEntries(rules, cidrs);
    }

    /// <summary>The identity cache as the kernel holds it.</summary>
    public IReadOnlyDictionary<IPNetwork, uint> ReadIpcache() =>
        _obj.Loaded.Map<PolIpKey, PolIdentity>(PolicyMaps.Ipcache).Entries()
            .ToDictionary(e => new IPNetwork(LbMaps.FromNetwork(e.Key.Address), (int)e.Key.PrefixLength), e => e.Value.Identity);

    private HashSet<PolRuleKey> RulesOf(uint epId)
    {
        _rules ??= _obj.Loaded.Map<PolRuleKey, uint>(PolicyMaps.Rules).Keys()
            .GroupBy(k => k.EndpointId).ToDictionary(g => g.Key, g => g.ToHashSet());
        if (!_rules.TryGetValue(epId, out var set))
        {
            _rules[epId] = set = [];
        }

        return set;
    }

    private Dictionary<PolCidrKey, uint> CidrsOf(uint epId)
    {
        _cidrs ??= _obj.Loaded.Map<PolCidrKey, uint>(PolicyMaps.Cidrs).Entries()
            .GroupBy(e => e.Key.EndpointId).ToDictionary(g => g.Key, g => g.ToDictionary(e => e.Key, e => e.Value));
        if (!_cidrs.TryGetValue(epId, out var map))
        {
            _cidrs[epId] = map = [];
        }

        return map;
    }

    private void ForgetCaches()
    {
        _ipcache = null;
        _rules = null;
        _cidrs = null;
    }
}
