using System.Text.Json;

namespace Loom.Core.Ipam;

/// <summary>
/// The host-local compatible "ipam" section: range sets (one address per set per
/// attachment), routes handed back to the runtime, and where allocations live.
/// </summary>
public sealed class IpamConfig
{
    /// <summary>host-local's default, so both plugins see the same allocations.</summary>
    public const string DefaultDataDir = "/var/lib/cni/networks";

    private IpamConfig(string networkName, IReadOnlyList<RangeSet> rangeSets, IReadOnlyList<IpamRoute> routes, string dataDir, string? resolvConf)
    {
        NetworkName = networkName;
        RangeSets = rangeSets;
        Routes = routes;
        DataDir = dataDir;
        ResolvConf = resolvConf;
    }

    /// <summary>The CNI network name; allocations are kept in <c>DataDir/NetworkName</c>.</summary>
    public string NetworkName { get; }

    /// <summary>The legacy flat range, if any, comes first, as in host-local.</summary>
    public IReadOnlyList<RangeSet> RangeSets { get; }

    public IReadOnlyList<IpamRoute> Routes { get; }

    public string DataDir { get; }

    public string? ResolvConf { get; }

    /// <summary>Full path of this network's allocation directory.</summary>
    public string NetworkDirectory => Path.Combine(DataDir, NetworkName);

    /// <summary>Reads the "ipam" object of a CNI network config.</summary>
    /// <param name="ipam">The value of the "ipam" key.</param>
    /// <param name="networkName">The top-level "name" of the network config.</param>
    /// <exception cref="IpamConfigException">Anything malformed; the key names the bad value.</exception>
    public static IpamConfig Parse(JsonElement ipam, string networkName) => IpamConfigParser.Parse(ipam, networkName);

    /// <summary>Builds a config in code, with the same checks <see cref="Parse"/> applies.</summary>
    /// <exception cref="IpamConfigException">Bad name, no range sets, or overlapping range sets.</exception>
    public static IpamConfig Create(string networkName, IEnumerable<RangeSet> rangeSets, IEnumerable<IpamRoute>? routes = null, string? dataDir = null, string? resolvConf = null)
    {
        ValidateNetworkName(networkName);
        var sets = rangeSets.ToArray();
        if (sets.Length == 0)
        {
            throw new IpamConfigException("ranges", "no IP ranges specified: set \"ranges\" or \"subnet\"");
        }

        for (var i = 0; i < sets.Length; i++)
        {
            for (var j = 0; j < i; j++)
            {
                if (sets[i].Overlaps(sets[j]))
                {
                    throw new IpamConfigException($"ranges[{i}]", $"range set ranges[{i}] ({sets[i]}) overlaps range set ranges[{j}] ({sets[j]})");
                }
            }
        }

        if (dataDir is not null && dataDir.Length == 0)
        {
            throw new IpamConfigException("dataDir", "dataDir must not be empty");
        }

        return new IpamConfig(networkName, sets, routes?.ToArray() ?? [], dataDir ?? DefaultDataDir, resolvConf);
    }

    private static void ValidateNetworkName(string name)
    {
        // The name becomes a directory; refuse anything that would escape dataDir.
        if (string.IsNullOrEmpty(name) || name is "." or ".." || name.Contains('/', StringComparison.Ordinal) || name.Contains('\0', StringComparison.Ordinal))
        {
            throw new IpamConfigException("name", $"network name \"{name}\" cannot be used as a directory name");
        }
    }
}
