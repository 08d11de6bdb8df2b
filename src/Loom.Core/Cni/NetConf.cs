using System.Text.Json;

namespace Loom.Core.Cni;

/// <summary>
/// The plugin configuration read from stdin: protocol keys, well-known keys, and the reference
/// bridge plugin's keys with its defaults. <see cref="Raw"/> keeps the exact input bytes for
/// delegation, since the IPAM plugin must see the complete, unchanged configuration.
/// </summary>
public sealed class NetConf
{
    /// <summary>The reference bridge plugin's default bridge name.</summary>
    public const string DefaultBridgeName = "cni0";

    /// <summary>The file name the node agent writes Loom's network configuration list under, in the CNI conf dir.</summary>
    public const string LoomConflistName = "10-loom.conflist";

    /// <summary>A routed network's conflist: sorts before the bridge network's, as Cilium's 05-cilium.conflist before 10-flannel.</summary>
    public const string RoutedConflistName = "05-loom.conflist";

    /// <summary>What <c>cniExclusive</c> appends to every other CNI config (Cilium appends <c>.cilium_bak</c>).</summary>
    public const string BackupSuffix = ".loom_bak";

    internal NetConf()
    {
    }

    /// <summary>The stdin bytes exactly as received.</summary>
    public ReadOnlyMemory<byte> Raw { get; internal set; }

    /// <summary>The whole document (a detached clone), for plugin-specific keys.</summary>
    public JsonElement Root { get; internal set; }

    public string CniVersion { get; internal set; } = "";

    public string Name { get; internal set; } = "";

    public string Type { get; internal set; } = "";

    /// <summary>Null when the config has no <c>ipam</c> section.</summary>
    public IpamConf? Ipam { get; internal set; }

    public CniDns Dns { get; internal set; } = new();

    public RuntimeConfig RuntimeConfig { get; internal set; } = RuntimeConfig.Empty;

    /// <summary>The reserved <c>args</c> object as raw JSON, or null.</summary>
    public string? ArgsJson { get; internal set; }

    /// <summary>The previous plugin's result (any version, converted to the model), or null.</summary>
    public CniResult? PrevResult { get; internal set; }

    /// <summary>
    /// GC only: <c>cni.dev/valid-attachments</c>, or libcni's older duplicate <c>cni.dev/attachments</c>.
    /// Null when neither key is present (distinct from an empty list, which means "none are valid").
    /// </summary>
    public IReadOnlyList<GcAttachment>? ValidAttachments { get; internal set; }

    /// <summary><c>"plumbing"</c>: <c>bridge</c> (the default) or <c>routed</c>.</summary>
    public PodPlumbing Plumbing { get; internal set; } = PodPlumbing.Bridge;

    public string BridgeName { get; internal set; } = DefaultBridgeName;

    public bool IsGateway { get; internal set; }

    public bool IsDefaultGateway { get; internal set; }

    public bool ForceAddress { get; internal set; }

    public bool IpMasq { get; internal set; }

    /// <summary>0 means "not set" (the bridge plugin then leaves the kernel default).</summary>
    public int Mtu { get; internal set; }

    public bool HairpinMode { get; internal set; }

    public bool PromiscMode { get; internal set; }

    /// <summary>0 means untagged; otherwise 1-4094.</summary>
    public int Vlan { get; internal set; }

    public bool MacSpoofCheck { get; internal set; }

    public bool EnableDad { get; internal set; }

    /// <summary>
    /// Parses and validates stdin. Malformed JSON is code 6; missing or mistyped keys are code 7
    /// naming the key; an unsupported <c>cniVersion</c> is code 1.
    /// </summary>
    public static NetConf Parse(ReadOnlySpan<byte> stdin) => NetConfParser.Parse(stdin);

    /// <summary>
    /// As <see cref="Parse(ReadOnlySpan{byte})"/>, and also checks that the config's version allows
    /// <paramref name="command"/> (CHECK needs 0.4.0, STATUS and GC need 1.1.0; else code 1).
    /// Do not call this for VERSION: its stdin need only carry <c>cniVersion</c>.
    /// </summary>
    public static NetConf Parse(ReadOnlySpan<byte> stdin, CniCommand command)
    {
        var conf = NetConfParser.Parse(stdin);
        CniVersions.EnsureCommandAllowed(command, conf.CniVersion);
        return conf;
    }
}
