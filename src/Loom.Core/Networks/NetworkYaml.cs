using System.Globalization;
using System.Text;
using System.Text.Json;
using Loom.Core.Model;

namespace Loom.Core.Networks;

/// <summary>A network in the network file's shape (what <c>loom network get</c> prints and <c>apply -f</c> reads back).</summary>
public static class NetworkYaml
{
    public static string Write(Network network)
    {
        ArgumentNullException.ThrowIfNull(network);
        var sb = new StringBuilder();
        void Line(string text) => sb.Append(text).Append('\n');
        Line("name: " + Scalar(network.Name));
        Line("podCIDR: " + network.PodCidr);
        Line("nodeMaskSize: " + network.NodeMaskSize.ToString(CultureInfo.InvariantCulture));
        Line("plumbing: " + Wire(network.Plumbing));
        Line("routingMode: " + Wire(network.RoutingMode));
        if (network.Tunnel is { } t)
        {
            Line("tunnel:");
            Line("  protocol: " + Wire(t.Protocol));
            Line("  port: " + t.Port.ToString(CultureInfo.InvariantCulture));
            Line("  vni: " + t.Vni.ToString(CultureInfo.InvariantCulture));
            Line("  device: " + Scalar(t.Device));
        }

        Line("autoDirectNodeRoutes: " + (network.AutoDirectNodeRoutes ? "true" : "false"));
        if (network.NativeRoutingCidr is { } native)
        {
            Line("nativeRoutingCIDR: " + native);
        }

        Line("hostRouting: " + Wire(network.HostRouting));
        Line("masquerade: " + Wire(network.Masquerade));
        return sb.ToString();
    }

    /// <summary>An enum as the files and the store spell it (its JSON name): "routed", "bpf".</summary>
    public static string Wire<T>(T value)
        where T : struct, Enum
        => JsonSerializer.Serialize(value, typeof(T), LoomJsonContext.Default).Trim('"');

    // Always quoted, as JSON (a valid YAML double-quoted scalar): a name such as "true", "1e3" or "a: b" must read back as the same string.
    private static string Scalar(string text) => JsonSerializer.Serialize(text, LoomJsonContext.Default.String);
}
