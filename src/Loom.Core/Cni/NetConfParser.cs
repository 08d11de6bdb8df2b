using System.Text.Unicode;
using System.Text.Json;

namespace Loom.Core.Cni;

/// <summary>Builds a <see cref="NetConf"/> from stdin with the spec's error codes.</summary>
internal static class NetConfParser
{
    private const string InvalidMsg = "invalid network config";

    public static NetConf Parse(ReadOnlySpan<byte> stdin)
    {
        var raw = stdin.ToArray();
        // JsonDocument checks structure, not the bytes inside strings: invalid UTF-8 would only fail when read.
        if (!Utf8.IsValid(raw))
        {
            throw new CniException(CniErrorCodes.DecodingFailure, "error unmarshalling network config", "not valid UTF-8");
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(raw);
        }
        catch (JsonException ex)
        {
            throw new CniException(CniErrorCodes.DecodingFailure, "error unmarshalling network config", ex.Message, ex);
        }

        // Not disposed, nor its elements cloned: the config lives as long as the process (a plugin run of a few
        // milliseconds), and returning the document's rented buffers is what first initialises ArrayPool's per-core
        // stacks, a ProcessorIdCache calibration loop measured at ~5% of loom-cni's ADD+DEL CPU. The GC takes them.
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new CniException(CniErrorCodes.DecodingFailure, "error unmarshalling network config", $"expected a JSON object, got {doc.RootElement.ValueKind}");
            }

            var o = new JsonFields(doc.RootElement, "", CniErrorCodes.InvalidNetworkConfig, InvalidMsg);
            var conf = new NetConf { Raw = raw, Root = doc.RootElement };

            conf.CniVersion = o.RequireString("cniVersion");
            CniVersions.EnsureSupported(conf.CniVersion);

            conf.Name = o.RequireString("name");
            if (!CniNames.IsValidIdentifier(conf.Name))
            {
                throw o.Fail("name", $"invalid characters found in network name \"{conf.Name}\" (must start with an alphanumeric character, followed by alphanumerics, '_', '.' or '-')");
            }

            conf.Type = o.RequireString("type");
            if (!CniNames.IsValidPluginType(conf.Type))
            {
                throw o.Fail("type", $"\"{conf.Type}\" is not a valid plugin name");
            }

            if (o.GetObject("ipam") is { } ipam)
            {
                var type = ipam.RequireString("type");
                if (!CniNames.IsValidPluginType(type))
                {
                    throw ipam.Fail(ipam.Path("type"), $"\"{type}\" is not a valid plugin name");
                }

                conf.Ipam = new IpamConf(type, ipam.Element);
            }

            if (o.GetObject("dns") is { } dns)
            {
                CniResultReader.ReadDns(dns, conf.Dns);
            }

            if (o.GetObject("runtimeConfig") is { } rc)
            {
                conf.RuntimeConfig = new RuntimeConfig(
                    rc.GetStringArray("ips") ?? [],
                    rc.GetString("mac"),
                    rc.Get("portMappings")?.GetRawText(),
                    rc.Get("bandwidth")?.GetRawText(),
                    rc.Element.GetRawText());
            }

            conf.ArgsJson = o.GetObject("args")?.Element.GetRawText();

            if (o.GetObject("prevResult") is { } prev)
            {
                // prevResult carries no version of its own on the wire; it is in the config's version.
                conf.PrevResult = CniResultReader.Read(prev.Element, conf.CniVersion, "prevResult", CniErrorCodes.InvalidNetworkConfig, InvalidMsg);
            }

            conf.ValidAttachments = ReadAttachments(o, "cni.dev/valid-attachments") ?? ReadAttachments(o, "cni.dev/attachments");

            conf.BridgeName = o.GetString("bridge") is { Length: > 0 } bridge ? bridge : NetConf.DefaultBridgeName;
            if (CniNames.InterfaceNameProblem(conf.BridgeName) is { } problem)
            {
                throw o.Fail("bridge", $"{problem}: \"{conf.BridgeName}\"");
            }

            conf.IsGateway = o.GetBool("isGateway") ?? false;
            conf.IsDefaultGateway = o.GetBool("isDefaultGateway") ?? false;
            conf.ForceAddress = o.GetBool("forceAddress") ?? false;
            conf.IpMasq = o.GetBool("ipMasq") ?? false;
            conf.Mtu = o.GetInt("mtu") ?? 0;
            if (conf.Mtu < 0)
            {
                throw o.Fail("mtu", $"must not be negative, got {conf.Mtu}");
            }

            conf.HairpinMode = o.GetBool("hairpinMode") ?? false;
            conf.PromiscMode = o.GetBool("promiscMode") ?? false;
            conf.Vlan = o.GetInt("vlan") ?? 0;
            if (conf.Vlan is < 0 or > 4094)
            {
                throw o.Fail("vlan", $"invalid VLAN ID {conf.Vlan} (must be between 0 and 4094)");
            }

            conf.MacSpoofCheck = o.GetBool("macspoofchk") ?? false;
            conf.EnableDad = o.GetBool("enabledad") ?? false;
            conf.Plumbing = ReadPlumbing(o);
            return conf;
        }
    }

    // Keys that only shape the bridge: with routed plumbing they would be silently ignored, so they are refused.
    private static readonly string[] BridgeOnlyKeys = ["bridge", "isGateway", "isDefaultGateway", "forceAddress", "hairpinMode", "promiscMode", "vlan", "macspoofchk"];

    private static PodPlumbing ReadPlumbing(JsonFields o)
    {
        switch (o.GetString("plumbing"))
        {
            case null or "bridge":
                return PodPlumbing.Bridge;
            case "routed":
                if (BridgeOnlyKeys.FirstOrDefault(k => o.Get(k) is not null) is { } key)
                {
                    throw o.Fail(o.Path(key), "applies to \"plumbing\": \"bridge\" only; remove it for \"routed\"");
                }

                return PodPlumbing.Routed;
            case var other:
                throw o.Fail("plumbing", $"must be \"bridge\" or \"routed\", got \"{other}\"");
        }
    }

    private static List<GcAttachment>? ReadAttachments(JsonFields o, string key)
    {
        if (o.GetObjectArray(key) is not { } items)
        {
            return null;
        }

        return items.Select(a => new GcAttachment(a.RequireString("containerID"), a.RequireString("ifname"))).ToList();
    }
}
