using System.Net;
using System.Text.Json;
using Loom.Core.Cni;
using Loom.Core.Ipam;

namespace Loom.Cni;

/// <summary>
/// The node's range as the agent publishes it (the role of flannel's subnet.env): with
/// <c>"ipam": {"type": "loom", "subnetFile": PATH}</c> and no ranges, the pod range, its gateway and the routes
/// to the cluster network come from that file, so the CNI config never has to change when a node's CIDR does.
/// </summary>
internal static class SubnetFile
{
    public static IpamConfig? TryLoad(NetConf conf, CniCommand command)
    {
        var ipam = conf.Ipam!.Element;
        if (!ipam.TryGetProperty("subnetFile", out var pathElement) || ipam.TryGetProperty("ranges", out _) || ipam.TryGetProperty("subnet", out _))
        {
            return null;
        }

        if (pathElement.ValueKind != JsonValueKind.String)
        {
            throw new CniException(CniErrorCodes.InvalidNetworkConfig, "invalid network config", "key \"ipam.subnetFile\": must be a string");
        }

        var path = pathElement.GetString()!;
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (OwnerFilesOnly(command))
            {
                // Releasing, finding and collecting work on the owner files alone and never consult the range, so
                // DEL stays idempotent and succeeds even on a node whose agent is gone.
                return WithoutRange(conf, ipam);
            }

            var code = command == CniCommand.Status ? CniErrorCodes.PluginNotAvailable : CniErrorCodes.TryAgainLater;
            throw new CniException(code, $"node not ready: cannot read {path}", $"is the loom agent running on this node? ({e.Message})", e);
        }

        try
        {
            return Parse(conf, ipam, path, lines);
        }
        catch (CniException) when (OwnerFilesOnly(command))
        {
            // A torn or corrupt file (the agent rewrites it from the store at its next pass) must not block a DEL either.
            return WithoutRange(conf, ipam);
        }
    }

    private static bool OwnerFilesOnly(CniCommand command) => command is CniCommand.Del or CniCommand.Gc or CniCommand.Check;

    private static IpamConfig WithoutRange(NetConf conf, JsonElement ipam) =>
        IpamConfig.Create(conf.Name, [RangeSet.Create([IpRange.Create(IPNetwork.Parse("192.0.2.0/24"))])], [], DataDir(ipam));

    private static IpamConfig Parse(NetConf conf, JsonElement ipam, string path, string[] lines)
    {
        var values = lines.Select(l => l.Split('=', 2)).Where(kv => kv.Length == 2).ToDictionary(kv => kv[0].Trim(), kv => kv[1].Trim(), StringComparer.Ordinal);
        var subnet = Cidr(values, "LOOM_SUBNET", path);
        var gateway = subnet.Address;
        var range = IpRange.Create(CniPlugin.NetworkOf(subnet), gateway: gateway);
        var routes = (values.GetValueOrDefault("LOOM_NETWORK") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries)
            .Select(n => IPNetwork.TryParse(n, out var net) ? new IpamRoute(net) : throw Bad(path, "LOOM_NETWORK", n)).ToList();
        return IpamConfig.Create(conf.Name, [RangeSet.Create([range])], routes, DataDir(ipam));
    }

    private static CniCidr Cidr(Dictionary<string, string> values, string key, string path) =>
        values.TryGetValue(key, out var text) && CniCidr.TryParse(text, out var cidr) ? cidr : throw Bad(path, key, values.GetValueOrDefault(key));

    private static string? DataDir(JsonElement ipam) =>
        ipam.TryGetProperty("dataDir", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;

    private static CniException Bad(string path, string key, string? value) =>
        new(CniErrorCodes.InvalidNetworkConfig, $"{path}: {key}={value} is not valid", "the agent writes this file; is it from another version?");
}
