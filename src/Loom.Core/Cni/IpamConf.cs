using System.Text.Json;

namespace Loom.Core.Cni;

/// <summary>
/// The <c>ipam</c> section. Only <see cref="Type"/> is interpreted here; the rest belongs to the
/// IPAM plugin, which receives the whole config (<see cref="NetConf.Raw"/>), not just this section.
/// </summary>
public sealed class IpamConf
{
    internal IpamConf(string type, JsonElement element)
    {
        Type = type;
        Element = element;
        RawJson = element.GetRawText();
    }

    /// <summary>The IPAM plugin's binary name in CNI_PATH.</summary>
    public string Type { get; }

    /// <summary>The section as parsed (a detached clone, safe to keep).</summary>
    public JsonElement Element { get; }

    /// <summary>The section's original JSON text.</summary>
    public string RawJson { get; }
}
