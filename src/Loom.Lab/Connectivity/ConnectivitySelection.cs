namespace Loom.Lab.Connectivity;

/// <summary>
/// <c>--test NAME</c> / <c>--test '!NAME'</c>: a test runs when some selector names it (every test when none does)
/// and no '!' selector does. A selector names a test by its whole name, a prefix of it (<c>pod-to-pod</c>) or its
/// group (<c>no-policies</c>, <c>policies</c>); no globs.
/// </summary>
public sealed class ConnectivitySelection
{
    private readonly List<string> _include;
    private readonly List<string> _exclude;

    private ConnectivitySelection(List<string> include, List<string> exclude)
    {
        _include = include;
        _exclude = exclude;
    }

    public static ConnectivitySelection All { get; } = new([], []);

    /// <summary>The selectors as given (each may also be a comma-separated list); an ArgumentException for a bad one.</summary>
    public static ConnectivitySelection Parse(IEnumerable<string> selectors)
    {
        ArgumentNullException.ThrowIfNull(selectors);
        var include = new List<string>();
        var exclude = new List<string>();
        foreach (var raw in selectors.SelectMany(s => s.Split(',')))
        {
            var s = raw.Trim();
            var negated = s.StartsWith('!');
            var name = negated ? s[1..].Trim() : s;
            if (name.Length == 0)
            {
                throw new ArgumentException($"--test '{raw}': no test name");
            }

            if (name.IndexOfAny(['*', '?', '[', ']', '!', ' ']) >= 0)
            {
                throw new ArgumentException($"--test '{raw}': a test name or prefix without globs (e.g. pod-to-pod, !all-egress-deny)");
            }

            (negated ? exclude : include).Add(name);
        }

        return new ConnectivitySelection(include, exclude);
    }

    /// <summary>Selectors that name none of the tests (a typo), for a clear error before anything is deployed.</summary>
    public IReadOnlyList<string> Unknown(IEnumerable<(string Name, string Group)> tests)
    {
        var all = tests.ToList();
        return [.. _include.Concat(_exclude.Select(e => "!" + e)).Where(s => !all.Exists(t => Names(s.TrimStart('!'), t.Name, t.Group)))];
    }

    public bool Selects(string name, string group) =>
        (_include.Count == 0 || _include.Exists(s => Names(s, name, group))) && !_exclude.Exists(s => Names(s, name, group));

    private static bool Names(string selector, string name, string group) =>
        selector == group || name.StartsWith(selector, StringComparison.Ordinal);
}
