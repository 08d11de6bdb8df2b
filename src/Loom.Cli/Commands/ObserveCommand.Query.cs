using System.CommandLine;
using System.CommandLine.Parsing;
using Loom.Core.Flows;

namespace Loom.Cli.Commands;

/// <summary>The filter flags of <c>loom observe</c>, read in the order given so that <c>--not</c> negates the flag after it.</summary>
internal static partial class ObserveCommand
{
    private static readonly Option<bool> NotOption = new("--not")
    {
        Description = "Negate the filter flag that follows (as hubble: --not --namespace kube-system); negated flags together exclude what they all match.",
        Arity = ArgumentArity.Zero,
    };

    /// <summary>A filter flag and how one of its values is added to a filter (checked; FormatException names the flag).</summary>
    private sealed record FilterFlag(Option Option, Func<FlowFilter, string, FlowFilter> Add);

    private static List<FilterFlag> Filters() =>
    [
        Flag("--pod", "Either side is this pod ([namespace/]name; a name prefix matches, as a Deployment's pods).", (f, v) => f with { Pods = [.. f.Pods, FlowArgs.Pod("--pod", v)] }),
        Flag("--from-pod", "The source is this pod ([namespace/]name prefix).", (f, v) => f with { FromPods = [.. f.FromPods, FlowArgs.Pod("--from-pod", v)] }),
        Flag("--to-pod", "The destination is this pod ([namespace/]name prefix).", (f, v) => f with { ToPods = [.. f.ToPods, FlowArgs.Pod("--to-pod", v)] }),
        Flag("--namespace", "Either side is in this namespace.", (f, v) => f with { Namespaces = [.. f.Namespaces, v] }, "-n"),
        Flag("--verdict", "FORWARDED, DROPPED or TRANSLATED.", (f, v) => f with { Verdicts = [.. f.Verdicts, FlowArgs.Verdict(v)] }),
        Flag("--drop-reason", $"A drop reason: {string.Join(", ", FlowNames.DropReasons)}.", (f, v) => f with { DropReasons = [.. f.DropReasons, FlowArgs.DropReason(v)] }),
        Flag("--protocol", "TCP, UDP, ICMP or SCTP.", (f, v) => f with { Protocols = [.. f.Protocols, FlowArgs.Protocol(v)] }),
        Flag("--port", "Either side's port.", (f, v) => f with { Ports = [.. f.Ports, FlowArgs.Port(PortNumber(v))] }),
        Flag("--to-service", "The destination is this Service ([namespace/]name).", (f, v) => f with { ToServices = [.. f.ToServices, FlowArgs.Service(v)] }),
        Flag("--node", "Seen on this node (in the lab, only its agent is asked).", (f, v) => f with { Nodes = [.. f.Nodes, v] }),
        Flag("--type", "trace, drop, policy-verdict or translation.", (f, v) => f with { Types = [.. f.Types, FlowArgs.Type(v)] }),
        Flag("--since", "Only flows since a duration ago (30s, 5m, 1h30m) or an RFC 3339 time.", (f, _) => f),
    ];

    private static FilterFlag Flag(string name, string description, Func<FlowFilter, string, FlowFilter> add, params string[] aliases)
    {
        var option = new Option<string[]>(name, aliases) { Description = description, Arity = ArgumentArity.OneOrMore };
        return new FilterFlag(option, add);
    }

    /// <summary>
    /// The query the flags ask for: each filter flag's value goes to Include, or to Exclude when <c>--not</c> came just
    /// before it; System.CommandLine keeps the tokens in order, which is what tells.
    /// </summary>
    private static FlowQuery Query(ParseResult parse, List<FilterFlag> filters, DateTimeOffset now)
    {
        var include = new FlowFilter();
        var exclude = new FlowFilter();
        DateTimeOffset? since = null;
        var negate = false;
        var tokens = parse.Tokens;
        for (var i = 0; i < tokens.Count; i++)
        {
            var t = tokens[i];
            if (t.Type != TokenType.Option)
            {
                continue;
            }

            if (t.Value == NotOption.Name)
            {
                negate = negate ? throw new FormatException("--not --not: negate a filter flag once") : true;
                continue;
            }

            var flag = filters.FirstOrDefault(f => f.Option.Name == t.Value || f.Option.Aliases.Contains(t.Value));
            if (flag is null)
            {
                negate = negate ? throw new FormatException($"--not {t.Value}: --not negates a filter flag ({string.Join(", ", filters.Select(f => f.Option.Name))})") : false;
                continue;
            }

            if (i + 1 >= tokens.Count || tokens[i + 1].Type != TokenType.Argument)
            {
                throw new FormatException($"{t.Value}: a value is missing");
            }

            var value = tokens[++i].Value;
            if (flag.Option.Name == "--since")
            {
                since = negate ? throw new FormatException("--not --since: --since cannot be negated") : FlowArgs.Since(value, now);
                continue;
            }

            if (negate)
            {
                exclude = flag.Add(exclude, value);
            }
            else
            {
                include = flag.Add(include, value);
            }

            negate = false;
        }

        if (negate)
        {
            throw new FormatException("--not at the end: it negates the filter flag after it");
        }

        return new FlowQuery { Include = include, Exclude = FlowMatcher.IsEmpty(exclude) ? null : exclude, Since = since };
    }

    private static int PortNumber(string value) =>
        int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port)
            ? port
            : throw new FormatException($"--port \"{value}\": not a number");
}
