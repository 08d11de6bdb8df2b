using System.Globalization;
using System.Text.Json;

namespace Loom.Datapath.Services;

/// <summary>What <c>nft -j list table ip kube-proxy</c> showed: chains, sets (with timeouts) and the verdict-map elements.</summary>
internal sealed class NftSnapshot
{
    public static readonly NftSnapshot Missing = new(false);

    private NftSnapshot(bool exists) => Exists = exists;

    public bool Exists { get; }

    public HashSet<string> Chains { get; } = new(StringComparer.Ordinal);

    /// <summary>Set name to its timeout in seconds (null when it has none).</summary>
    public Dictionary<string, long?> Sets { get; } = new(StringComparer.Ordinal);

    /// <summary>Map name to its elements: "10.96.0.100 . tcp . 80" to "goto service-...".</summary>
    public Dictionary<string, Dictionary<string, string>> Maps { get; } = new(StringComparer.Ordinal);

    public IReadOnlyDictionary<string, string> Elements(string map) =>
        Maps.TryGetValue(map, out var e) ? e : new Dictionary<string, string>();

    /// <summary>An existing table whose contents the caller fills in from what it applied, without asking the kernel.</summary>
    public static NftSnapshot Known() => new(true);

    public static NftSnapshot Parse(string? json)
    {
        if (json is null)
        {
            return Missing;
        }

        var snap = new NftSnapshot(true);
        using var doc = JsonDocument.Parse(json);
        foreach (var item in doc.RootElement.GetProperty("nftables").EnumerateArray())
        {
            if (item.TryGetProperty("chain", out var chain))
            {
                snap.Chains.Add(chain.GetProperty("name").GetString()!);
            }
            else if (item.TryGetProperty("set", out var set))
            {
                snap.Sets[set.GetProperty("name").GetString()!] = set.TryGetProperty("timeout", out var t) ? t.GetInt64() : null;
            }
            else if (item.TryGetProperty("map", out var map))
            {
                var elements = new Dictionary<string, string>(StringComparer.Ordinal);
                if (map.TryGetProperty("elem", out var elems))
                {
                    foreach (var pair in elems.EnumerateArray())
                    {
                        elements[Key(pair[0])] = Verdict(pair[1]);
                    }
                }

                snap.Maps[map.GetProperty("name").GetString()!] = elements;
            }
        }

        return snap;
    }

    // {"concat": [...]} or, for an element with a comment, {"elem": {"val": {"concat": [...]}, "comment": ...}}.
    private static string Key(JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty("elem", out var inner))
        {
            return Key(inner.GetProperty("val"));
        }

        if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty("concat", out var parts))
        {
            return string.Join(" . ", parts.EnumerateArray().Select(Scalar));
        }

        return Scalar(e);
    }

    private static string Scalar(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Number => e.GetInt64().ToString(CultureInfo.InvariantCulture),
        JsonValueKind.String => e.GetString()!,
        _ => e.GetRawText(),
    };

    private static string Verdict(JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.String)
        {
            return e.GetString()!;
        }

        var p = e.EnumerateObject().First();
        return p.Value.ValueKind == JsonValueKind.Object && p.Value.TryGetProperty("target", out var target)
            ? p.Name + " " + target.GetString()
            : p.Name;
    }
}
