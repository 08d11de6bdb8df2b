using System.Text;
using Loom.Linux.Firewall;

namespace Loom.Datapath.Services;

/// <summary>
/// kube-proxy's iptables mode: one <c>iptables-restore --noflush</c> per sync in the caller's namespace. The first
/// sync of an instance is a full one (every service chain rewritten, adopting whatever a previous run left); later
/// syncs rewrite only services whose state changed or whose chains are missing from <c>iptables-save</c>.
/// </summary>
internal sealed class IptablesServiceBackend(ServiceProxyOptions options) : IServiceBackend
{
    private readonly Dictionary<string, ServicePortState> _applied = new(StringComparer.Ordinal);
    private bool _needFullSync = true;

    public string Name => "iptables";

    /// <summary>The restore input of the last sync (for tests and debugging).</summary>
    public string? LastRestoreInput { get; private set; }

    public void Sync(IReadOnlyCollection<ServicePortState> desired)
    {
        ArgumentNullException.ThrowIfNull(desired);
        var filter = IptablesSnapshot.Parse(IptablesRestore.Save("filter"));
        var nat = IptablesSnapshot.Parse(IptablesRestore.Save("nat"));
        var full = _needFullSync;
        bool Rewrite(ServicePortState s) =>
            full
            || !_applied.TryGetValue(IptablesRules.ServiceChain(s), out var prev)
            || !prev.Equals(s)
            || !IptablesRules.ChainsOf(s).All(nat.Chains.Contains);

        var input = IptablesRules.Render(desired, Rewrite, filter, nat, options);
        try
        {
            IptablesRestore.Apply(input);
        }
        catch
        {
            // What the kernel holds is unknown now; rewrite everything next time, as kube-proxy does.
            _needFullSync = true;
            throw;
        }

        LastRestoreInput = input;
        _needFullSync = false;
        _applied.Clear();
        foreach (var s in desired)
        {
            _applied[IptablesRules.ServiceChain(s)] = s;
        }
    }

    public void Flush()
    {
        var input = IptablesRules.RenderFlush(IptablesSnapshot.Parse(IptablesRestore.Save("filter")), IptablesSnapshot.Parse(IptablesRestore.Save("nat")));
        if (input is not null)
        {
            IptablesRestore.Apply(input);
        }

        _applied.Clear();
        _needFullSync = true;
    }

    public string Explain(ServicePortState service)
    {
        ArgumentNullException.ThrowIfNull(service);
        var filter = IptablesSnapshot.Parse(IptablesRestore.Save("filter"));
        var nat = IptablesSnapshot.Parse(IptablesRestore.Save("nat"));
        var svcChain = IptablesRules.ServiceChain(service);
        var sb = new StringBuilder();
        var reject = filter.RulesOf(IptablesRules.ServicesChain)
            .Where(r => r.Contains($"\"{service.Name} has no endpoints\"", StringComparison.Ordinal)).ToList();
        if (reject.Count > 0)
        {
            sb.Append("*filter\n");
            reject.ForEach(r => sb.Append(r).Append('\n'));
        }

        var natRules = nat.RulesOf(IptablesRules.ServicesChain).Where(r => r.EndsWith(" -j " + svcChain, StringComparison.Ordinal)).ToList();
        var svcRules = nat.RulesOf(svcChain).ToList();
        natRules.AddRange(svcRules);
        var seps = svcRules.Select(r => r[(r.LastIndexOf(" -j ", StringComparison.Ordinal) + 4)..])
            .Where(c => c.StartsWith("KUBE-SEP-", StringComparison.Ordinal)).Distinct(StringComparer.Ordinal);
        foreach (var sep in seps)
        {
            natRules.AddRange(nat.RulesOf(sep));
        }

        if (natRules.Count > 0)
        {
            sb.Append("*nat\n");
            natRules.ForEach(r => sb.Append(r).Append('\n'));
        }

        return sb.Length == 0 ? $"# {service.Name} ({service.Frontend}): nothing programmed\n" : sb.ToString();
    }
}
