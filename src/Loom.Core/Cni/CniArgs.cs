using System.Net;

namespace Loom.Core.Cni;

/// <summary>
/// <c>CNI_ARGS</c>: <c>K=V;K=V</c> pairs. Unknown keys are an error unless <c>IgnoreUnknown</c>
/// is 1/true, like libcni's LoadArgs (keys are case-sensitive; exactly one '=' per pair).
/// </summary>
public sealed class CniArgs
{
    public const string IgnoreUnknownKey = "IgnoreUnknown";
    public const string IpKey = "IP";
    public const string MacKey = "MAC";
    public const string K8sPodNameKey = "K8S_POD_NAME";
    public const string K8sPodNamespaceKey = "K8S_POD_NAMESPACE";
    public const string K8sPodInfraContainerIdKey = "K8S_POD_INFRA_CONTAINER_ID";
    public const string K8sPodUidKey = "K8S_POD_UID";

    /// <summary>Keys Loom understands by default.</summary>
    public static IReadOnlyList<string> DefaultKnownKeys { get; } =
        [IgnoreUnknownKey, IpKey, MacKey, K8sPodNameKey, K8sPodNamespaceKey, K8sPodInfraContainerIdKey, K8sPodUidKey];

    public static CniArgs Empty { get; } = new(new Dictionary<string, string>(StringComparer.Ordinal), false, null);

    private CniArgs(IReadOnlyDictionary<string, string> values, bool ignoreUnknown, IPAddress? ip)
    {
        Values = values;
        IgnoreUnknown = ignoreUnknown;
        Ip = ip;
    }

    /// <summary>Every pair, including ignored unknown ones; a repeated key keeps its last value.</summary>
    public IReadOnlyDictionary<string, string> Values { get; }

    public bool IgnoreUnknown { get; }

    /// <summary><c>IP=</c>: a requested address (host-local accepts it with or without a prefix).</summary>
    public IPAddress? Ip { get; }

    public string? Mac => Get(MacKey);

    public string? K8sPodName => Get(K8sPodNameKey);

    public string? K8sPodNamespace => Get(K8sPodNamespaceKey);

    public string? K8sPodInfraContainerId => Get(K8sPodInfraContainerIdKey);

    public string? K8sPodUid => Get(K8sPodUidKey);

    public string? Get(string key) => Values.TryGetValue(key, out var v) ? v : null;

    /// <summary>Parses <paramref name="raw"/>; errors are code 4 naming CNI_ARGS and the offending pair or key.</summary>
    /// <param name="raw">The CNI_ARGS value; null or empty means no arguments.</param>
    /// <param name="extraKnownKeys">Keys the caller accepts on top of <see cref="DefaultKnownKeys"/>.</param>
    public static CniArgs Parse(string? raw, IEnumerable<string>? extraKnownKeys = null)
    {
        if (string.IsNullOrEmpty(raw))
        {
            return Empty;
        }

        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var pair in raw.Split(';'))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0 || pair.IndexOf('=', eq + 1) >= 0)
            {
                throw Invalid($"invalid pair \"{pair}\"");
            }

            var key = pair[..eq];
            if (!values.ContainsKey(key))
            {
                order.Add(key);
            }

            values[key] = pair[(eq + 1)..];
        }

        var ignoreUnknown = false;
        if (values.TryGetValue(IgnoreUnknownKey, out var ignore))
        {
            ignoreUnknown = ignore.ToUpperInvariant() switch
            {
                "1" or "TRUE" => true,
                "0" or "FALSE" => false,
                _ => throw Invalid($"invalid boolean for {IgnoreUnknownKey}: \"{ignore}\""),
            };
        }

        IPAddress? ip = null;
        if (values.TryGetValue(IpKey, out var ipText))
        {
            var slash = ipText.IndexOf('/', StringComparison.Ordinal);
            if (!IpText.TryParse(slash < 0 ? ipText : ipText[..slash], out var parsed))
            {
                throw Invalid($"invalid IP address for {IpKey}: \"{ipText}\"");
            }

            ip = parsed;
        }

        if (!ignoreUnknown)
        {
            var known = new HashSet<string>(DefaultKnownKeys, StringComparer.Ordinal);
            if (extraKnownKeys is not null)
            {
                known.UnionWith(extraKnownKeys);
            }

            var unknown = order.Where(k => !known.Contains(k)).ToList();
            if (unknown.Count > 0)
            {
                throw Invalid($"unknown args [{string.Join(", ", unknown)}] (set IgnoreUnknown=1 to allow)");
            }
        }

        return new CniArgs(values, ignoreUnknown, ip);
    }

    private static CniException Invalid(string details) =>
        new(CniErrorCodes.InvalidEnvironmentVariables, "invalid CNI_ARGS", $"CNI_ARGS: {details}");
}
