namespace Loom.Datapath.Services;

/// <summary>The chains and rules of one table as <c>iptables-save -t TABLE</c> printed them.</summary>
internal sealed class IptablesSnapshot
{
    public static readonly IptablesSnapshot Empty = new([], []);

    private IptablesSnapshot(HashSet<string> chains, List<string> rules)
    {
        Chains = chains;
        Rules = rules;
    }

    public IReadOnlySet<string> Chains { get; }

    /// <summary>The <c>-A CHAIN ...</c> lines in order.</summary>
    public IReadOnlyList<string> Rules { get; }

    public static IptablesSnapshot Parse(string save)
    {
        var chains = new HashSet<string>(StringComparer.Ordinal);
        var rules = new List<string>();
        foreach (var raw in save.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.StartsWith(':'))
            {
                var end = line.IndexOf(' ', StringComparison.Ordinal);
                chains.Add(end < 0 ? line[1..] : line[1..end]);
            }
            else if (line.StartsWith("-A ", StringComparison.Ordinal))
            {
                rules.Add(line);
            }
        }

        return new IptablesSnapshot(chains, rules);
    }

    public IEnumerable<string> RulesOf(string chain) => Rules.Where(r => r.StartsWith("-A " + chain + " ", StringComparison.Ordinal));
}
