namespace Loom.Core.Cni;

/// <summary>
/// A route (result <c>routes[]</c>). Only <see cref="Destination"/> and <see cref="Gateway"/>
/// exist before 1.1.0; the rest are emitted from 1.1.0 on, and only when set.
/// </summary>
public sealed class CniRoute
{
    public required CniCidr Destination { get; set; }

    /// <summary>Next hop; when null the <c>ips[].gateway</c> may be used.</summary>
    public System.Net.IPAddress? Gateway { get; set; }

    /// <summary>0 means unset.</summary>
    public int Mtu { get; set; }

    /// <summary>0 means unset.</summary>
    public int AdvMss { get; set; }

    /// <summary>0 means unset; lower is preferred.</summary>
    public int Priority { get; set; }

    /// <summary>Routing table; null means unset (0 is a value here, as in Go's *int).</summary>
    public int? Table { get; set; }

    /// <summary>Route scope (0 global, 253 link, 254 host); null means unset.</summary>
    public int? Scope { get; set; }
}
