using System.Globalization;
using System.Net;
using System.Text.Json;

namespace Loom.Core.Ipam;

/// <summary>
/// Walks the "ipam" JSON by hand: AOT-safe, and every error can name the exact key.
/// Unknown keys (type, etc.) are ignored, as host-local does.
/// </summary>
internal static class IpamConfigParser
{
    public static IpamConfig Parse(JsonElement ipam, string networkName)
    {
        if (ipam.ValueKind != JsonValueKind.Object)
        {
            throw new IpamConfigException("ipam", $"ipam must be an object, not {Describe(ipam)}");
        }

        var sets = new List<RangeSet>();

        // Legacy flat form: a single range at top level, prepended like host-local does.
        if (ipam.TryGetProperty("subnet", out _))
        {
            sets.Add(RangeSet.Create([ParseRange(ipam, "")], "subnet"));
        }
        else
        {
            foreach (var flat in (string[])["rangeStart", "rangeEnd", "gateway"])
            {
                if (ipam.TryGetProperty(flat, out _))
                {
                    throw new IpamConfigException(flat, $"{flat} is set but subnet is missing");
                }
            }
        }

        if (ipam.TryGetProperty("ranges", out var ranges) && ranges.ValueKind != JsonValueKind.Null)
        {
            RequireKind(ranges, JsonValueKind.Array, "ranges", "an array of range sets");
            var i = 0;
            foreach (var set in ranges.EnumerateArray())
            {
                var setKey = $"ranges[{i}]";
                RequireKind(set, JsonValueKind.Array, setKey, "an array of ranges");
                var members = new List<IpRange>();
                var j = 0;
                foreach (var range in set.EnumerateArray())
                {
                    var rangeKey = $"{setKey}[{j}]";
                    RequireKind(range, JsonValueKind.Object, rangeKey, "an object");
                    members.Add(ParseRange(range, rangeKey + "."));
                    j++;
                }

                sets.Add(RangeSet.Create(members, setKey));
                i++;
            }
        }

        var routes = new List<IpamRoute>();
        if (ipam.TryGetProperty("routes", out var routeArray) && routeArray.ValueKind != JsonValueKind.Null)
        {
            RequireKind(routeArray, JsonValueKind.Array, "routes", "an array");
            var i = 0;
            foreach (var route in routeArray.EnumerateArray())
            {
                var key = $"routes[{i}]";
                RequireKind(route, JsonValueKind.Object, key, "an object");
                var dst = GetString(route, key + ".dst") ?? throw new IpamConfigException(key + ".dst", $"{key}.dst is required");
                var gw = GetString(route, key + ".gw");
                routes.Add(new IpamRoute(ParseCidr(dst, key + ".dst", maskHostBits: true), gw is null ? null : ParseIp(gw, key + ".gw")));
                i++;
            }
        }

        return IpamConfig.Create(networkName, sets, routes, GetString(ipam, "dataDir"), GetString(ipam, "resolvConf"));
    }

    private static IpRange ParseRange(JsonElement range, string prefix)
    {
        var subnetText = GetString(range, prefix + "subnet") ?? throw new IpamConfigException(prefix + "subnet", $"{prefix}subnet is required");
        var subnet = ParseCidr(subnetText, prefix + "subnet", maskHostBits: false);
        return IpRange.Create(subnet, Optional("rangeStart"), Optional("rangeEnd"), Optional("gateway"), prefix);

        IPAddress? Optional(string field)
        {
            var text = GetString(range, prefix + field);
            return text is null ? null : ParseIp(text, prefix + field);
        }
    }

    /// <summary>Reads a string property; the key is the full path, its last segment the property name.</summary>
    private static string? GetString(JsonElement parent, string key)
    {
        var name = key[(key.LastIndexOf('.') + 1)..];
        if (!parent.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        RequireKind(value, JsonValueKind.String, key, "a string");
        var text = value.GetString()!;
        return text.Length == 0 ? null : text;
    }

    private static IPAddress ParseIp(string text, string key)
        => IpMath.TryParse(text, out var address) ? address : throw new IpamConfigException(key, $"{key} {text} is not an IP address");

    private static IPNetwork ParseCidr(string text, string key, bool maskHostBits)
    {
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0 || !IpMath.TryParse(text[..slash], out var address)
            || !int.TryParse(text.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var prefix)
            || prefix > IpMath.Bits(address.AddressFamily))
        {
            throw new IpamConfigException(key, $"{key} {text} is not a CIDR subnet (address/prefix)");
        }

        var family = address.AddressFamily;
        var value = IpMath.ToValue(address);
        var networkValue = value & ~IpMath.HostMask(prefix, family);
        if (networkValue != value && !maskHostBits)
        {
            // host-local refuses this too: the caller probably meant a different subnet.
            throw new IpamConfigException(key, $"{key} {text} has host bits set; the network address for /{prefix} is {IpMath.Format(IpMath.FromValue(networkValue, family))}");
        }

        return new IPNetwork(IpMath.FromValue(networkValue, family), prefix);
    }

    private static void RequireKind(JsonElement value, JsonValueKind kind, string key, string expected)
    {
        if (value.ValueKind != kind)
        {
            throw new IpamConfigException(key, $"{key} must be {expected}, not {Describe(value)}");
        }
    }

    private static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };
}
