using System.Text;

namespace Loom.Lab.Tests.Policy;

/// <summary>
/// The upstream NetworkPolicy e2e model's expected matrix: for every (from pod, to pod) whether a connection succeeds.
/// Built as upstream does: a default for all, then pairs by selector; a pod always reaches itself (loopback never
/// leaves the pod).
/// </summary>
public sealed class Reachability
{
    private readonly Dictionary<(string From, string To), bool> _expected = [];

    public Reachability(IReadOnlyList<string> pods, bool defaultExpectation)
    {
        Pods = pods;
        foreach (var from in pods)
        {
            foreach (var to in pods)
            {
                _expected[(from, to)] = defaultExpectation || from == to;
            }
        }
    }

    /// <summary>Pods as "namespace/name".</summary>
    public IReadOnlyList<string> Pods { get; }

    public bool this[string from, string to] => _expected[(from, to)];

    /// <summary>Sets every pair whose source matches <paramref name="from"/> and destination <paramref name="to"/> (null: any).</summary>
    public Reachability Expect(Func<string, bool>? from, Func<string, bool>? to, bool connected)
    {
        foreach (var key in _expected.Keys.ToList())
        {
            if ((from?.Invoke(key.From) ?? true) && (to?.Invoke(key.To) ?? true) && key.From != key.To)
            {
                _expected[key] = connected;
            }
        }

        return this;
    }

    public Reachability ExpectAllIngress(string to, bool connected) => Expect(null, p => p == to, connected);

    public Reachability ExpectAllEgress(string from, bool connected) => Expect(p => p == from, null, connected);

    public Reachability ExpectPeer(string from, string to, bool connected) => Expect(p => p == from, p => p == to, connected);

    public static Func<string, bool> InNamespace(string ns) => p => p.StartsWith(ns + "/", StringComparison.Ordinal);

    /// <summary>Upstream's truth table: rows are sources, columns destinations, '.' connects, 'X' does not, wrong cells marked.</summary>
    public static string Table(IReadOnlyList<string> pods, Func<string, string, bool> cell, Func<string, string, bool>? wrong = null)
    {
        var sb = new StringBuilder("-\t" + string.Join("\t", pods) + "\n");
        foreach (var from in pods)
        {
            sb.Append(from);
            foreach (var to in pods)
            {
                sb.Append('\t').Append(cell(from, to) ? "." : "X").Append(wrong?.Invoke(from, to) == true ? "*" : "");
            }

            sb.Append('\n');
        }

        return sb.ToString();
    }
}
