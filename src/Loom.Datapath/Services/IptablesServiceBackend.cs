using System.Text;
using Loom.Linux.Firewall;

namespace Loom.Datapath.Services;

/// <summary>
/// kube-proxy's iptables mode: one <c>iptables-restore --noflush</c> per sync in the caller's namespace. The first
/// sync of an instance is a full one: it reads the kernel (<c>iptables-save</c>), rewrites every service chain and
/// KUBE-SERVICES and so adopts whatever a previous run left. Like kube-proxy, the instance then keeps what it applied in
/// memory: later (partial) syncs read nothing from the kernel and rewrite only services whose state changed. Unlike
/// kube-proxy, a partial sync changes KUBE-SERVICES only by single rules (<see cref="IptablesRules.RenderPartial"/>),
/// and runs nothing when nothing changed. A failed apply (a <c>-D</c> of a rule someone removed fails it), a
/// <see cref="Flush"/> or <see cref="AppliedServices.FullSyncPeriod"/> elapsing makes the next sync a full one again.
/// </summary>
internal sealed partial class IptablesServiceBackend(ServiceProxyOptions options) : IServiceBackend
{
    private static readonly string[] FilterComments = ["has no endpoints", "has no local endpoints", "health check node port"];
    private static readonly string[] FilterChains = [IptablesRules.ServicesChain, IptablesRules.ExternalServicesChain, IptablesRules.NodePortsChain];
    private static readonly string[] EntryChains = [IptablesRules.ServicesChain, IptablesRules.NodePortsChain];

    private readonly AppliedServices _applied = new(IptablesRules.ServiceChain);

    public string Name => "iptables";

    /// <summary>The ports the last sync left out or adjusted, one line each (see <see cref="ServiceModel.Renderable"/>).</summary>
    public IReadOnlyList<string> LastSkipped { get; private set; } = [];

    /// <summary>Keep <see cref="LastRestoreInput"/> (tests): off in the agent, where the first sync's input for 10,000
    /// services would otherwise stay live, megabytes of text, until the next sync.</summary>
    public bool KeepLastInput { get; init; }

    /// <summary>The restore input of the last sync, when <see cref="KeepLastInput"/> is set (for tests and debugging).</summary>
    public string? LastRestoreInput { get; private set; }

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
        var input = full
            ? IptablesRules.Render(desired, IptablesSnapshot.Parse(IptablesRestore.Save("filter")), IptablesSnapshot.Parse(IptablesRestore.Save("nat")), options)
            : IptablesRules.RenderPartial(desired, _applied.Services, options);
        try
        {
            // An empty partial input: nothing changed, so the tool (and its read of the table) is not needed.
            if (full || input.Length > 0)
            {
                IptablesRestore.Apply(input);
            }
        }
        catch
        {
            // What the kernel holds is unknown now; read it and rewrite everything next time, as kube-proxy does.
            _applied.Forget();
            throw;
        }

        LastRestoreInput = KeepLastInput ? input : null;
        LastSyncWasFull = full;
        _applied.Record(desired, full);
    }

    public void Flush()
    {
        var input = IptablesRules.RenderFlush(IptablesSnapshot.Parse(IptablesRestore.Save("filter")), IptablesSnapshot.Parse(IptablesRestore.Save("nat")));
        if (input is not null)
        {
            IptablesRestore.Apply(input);
        }

        _applied.Forget();
    }

    public string Explain(ServicePortState service)
    {
        ArgumentNullException.ThrowIfNull(service);
        var filter = IptablesSnapshot.Parse(IptablesRestore.Save("filter"));
        var nat = IptablesSnapshot.Parse(IptablesRestore.Save("nat"));
        var sb = new StringBuilder();
        // Filter rules carry the service's name in one of kube-proxy's comments.
        var comments = FilterComments.Select(c => $"\"{service.Name} {c}\"").ToList();
        var filterRules = FilterChains.SelectMany(filter.RulesOf).Where(r => comments.Any(c => r.Contains(c, StringComparison.Ordinal))).ToList();
        if (filterRules.Count > 0)
        {
            sb.Append("*filter\n");
            filterRules.ForEach(r => sb.Append(r).Append('\n'));
        }

        // Entry rules jump to one of the service's own chains; those chains lead to its KUBE-SEP chains.
        var own = new[] { IptablesRules.ExternalChain(service), IptablesRules.ServiceChain(service), IptablesRules.LocalChain(service) };
        var natRules = EntryChains.SelectMany(nat.RulesOf)
            .Where(r => own.Any(c => r.EndsWith(" -j " + c, StringComparison.Ordinal))).ToList();
        var policyRules = own.SelectMany(nat.RulesOf).ToList();
        natRules.AddRange(policyRules);
        var seps = policyRules.Select(r => r[(r.LastIndexOf(" -j ", StringComparison.Ordinal) + 4)..])
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
