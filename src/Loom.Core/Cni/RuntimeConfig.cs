namespace Loom.Core.Cni;

/// <summary>
/// <c>runtimeConfig</c>: capability arguments from the runtime (CONVENTIONS.md). Loom reads
/// <c>ips</c> and <c>mac</c>; port mappings and bandwidth are kept as raw JSON for the chained plugins.
/// </summary>
public sealed class RuntimeConfig
{
    public static RuntimeConfig Empty { get; } = new([], null, null, null, null);

    internal RuntimeConfig(IReadOnlyList<string> ips, string? mac, string? portMappingsJson, string? bandwidthJson, string? rawJson)
    {
        Ips = ips;
        Mac = mac;
        PortMappingsJson = portMappingsJson;
        BandwidthJson = bandwidthJson;
        RawJson = rawJson;
    }

    /// <summary>Requested addresses (the <c>ips</c> capability), as given, e.g. "10.1.0.5/24".</summary>
    public IReadOnlyList<string> Ips { get; }

    /// <summary>Requested MAC (the <c>mac</c> capability).</summary>
    public string? Mac { get; }

    public string? PortMappingsJson { get; }

    public string? BandwidthJson { get; }

    /// <summary>The whole <c>runtimeConfig</c> object, or null when absent.</summary>
    public string? RawJson { get; }
}
