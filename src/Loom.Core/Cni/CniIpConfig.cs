namespace Loom.Core.Cni;

/// <summary>An assigned address (result <c>ips[]</c>).</summary>
public sealed class CniIpConfig
{
    public required CniCidr Address { get; set; }

    public System.Net.IPAddress? Gateway { get; set; }

    /// <summary>Index into <see cref="CniResult.Interfaces"/>; IPAM plugins leave it unset.</summary>
    public int? Interface { get; set; }
}
