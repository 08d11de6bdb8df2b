using System.Text.Json;
using Loom.Core.Ipam;

namespace Loom.Core.Tests.Ipam;

internal static class Configs
{
    public static IpamConfig Parse(string ipamJson, string network = "testnet")
    {
        using var doc = JsonDocument.Parse(ipamJson);
        return IpamConfig.Parse(doc.RootElement, network);
    }

    /// <summary>A config with one single-range set per subnet, stored under <paramref name="dataDir"/>.</summary>
    public static IpamConfig Simple(string dataDir, params string[] subnets)
    {
        var sets = string.Join(",", subnets.Select(s => $"[{{\"subnet\":\"{s}\"}}]"));
        return Parse($"{{\"type\":\"loom\",\"dataDir\":\"{dataDir}\",\"ranges\":[{sets}]}}");
    }

    public static IpamConfigException ParseError(string ipamJson)
        => Assert.Throws<IpamConfigException>(() => Parse(ipamJson));
}
