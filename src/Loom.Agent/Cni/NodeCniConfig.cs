using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Loom.Core.Cni;
using Loom.Core.Ipam;

namespace Loom.Agent.Cni;

/// <summary>
/// What the agent hands the node's container runtime once the node is ready: the subnet file (the role of
/// flannel's subnet.env: the cluster network, this node's range, the MTU) and <c>10-loom.conflist</c>, written
/// only then, so a runtime never starts pods on a node whose network is not there yet.
/// </summary>
internal static class NodeCniConfig
{
    public const string ConflistName = NetConf.LoomConflistName;

    public const string RoutedConflistName = NetConf.RoutedConflistName;

    public const string BackupSuffix = NetConf.BackupSuffix;

    /// <summary>The pod bridge loom-cni attaches pods to (flannel's delegate uses the same name).</summary>
    public const string BridgeName = NetConf.DefaultBridgeName;

    public const string NetworkName = "loom";

    public static string RenderSubnetEnv(IReadOnlyList<IPNetwork> pools, IPNetwork nodeCidr, int mtu, bool ipMasq)
    {
        var gateway = IpRange.DefaultGateway(nodeCidr);
        return string.Create(CultureInfo.InvariantCulture,
            $"LOOM_NETWORK={string.Join(',', pools)}\nLOOM_SUBNET={gateway}/{nodeCidr.PrefixLength}\nLOOM_MTU={mtu}\nLOOM_IPMASQ={(ipMasq ? "true" : "false")}\n");
    }

    /// <summary>Bridge mode, as flannel's delegate: cni0, gateway on the bridge, routes via it; portmap chained.</summary>
    public static string RenderConflist(AgentConfig config, int mtu) => Render(NetworkName, config, config.SubnetFile, mtu, w =>
    {
        w.WriteString("bridge", BridgeName);
        w.WriteBoolean("isGateway", true);
        w.WriteBoolean("isDefaultGateway", true);
        w.WriteBoolean("hairpinMode", true);
        w.WriteBoolean("ipMasq", false); // the agent masquerades for the whole node (LOOM-POSTRTG)
    });

    /// <summary>
    /// Routed mode, as Cilium wires pods: a /32 per pod behind its own veth, the router IP on loom_host. Named after
    /// the network: loom-cni tags the host veths with it, and host routing finds a network's pods by that tag.
    /// </summary>
    public static string RenderRoutedConflist(AgentConfig config, string network, int mtu) =>
        Render(network, config, config.SubnetFileOf(network), mtu, w => w.WriteString("plumbing", "routed"));

    private static string Render(string name, AgentConfig config, string subnetFile, int mtu, Action<Utf8JsonWriter> plumbing)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("cniVersion", "1.0.0"); // the reference plugins chained after us speak up to 1.0.0
            w.WriteString("name", name);
            w.WriteStartArray("plugins");
            w.WriteStartObject();
            w.WriteString("type", "loom-cni");
            plumbing(w);
            w.WriteNumber("mtu", mtu);
            w.WriteString("agentSocket", config.SocketPath);
            w.WriteStartObject("ipam");
            w.WriteString("type", "loom");
            w.WriteString("subnetFile", subnetFile);
            w.WriteString("dataDir", config.IpamDataDir);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteStartObject();
            w.WriteString("type", "portmap");
            w.WriteStartObject("capabilities");
            w.WriteBoolean("portMappings", true);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    /// <summary>Written atomically: a runtime polling the directory never reads half a file, nor a torn one after a crash.</summary>
    public static void WriteAtomically(string path, string content) => Loom.Core.Io.AtomicFile.WriteText(path, content);
}
