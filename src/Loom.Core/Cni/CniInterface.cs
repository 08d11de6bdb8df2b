namespace Loom.Core.Cni;

/// <summary>An interface created by the attachment (result <c>interfaces[]</c>).</summary>
public sealed class CniInterface
{
    public required string Name { get; set; }

    public string? Mac { get; set; }

    /// <summary>0 means unset (omitted). Emitted from 1.1.0 on.</summary>
    public int Mtu { get; set; }

    /// <summary>The CNI_NETNS for interfaces inside the container; null for host interfaces.</summary>
    public string? Sandbox { get; set; }

    /// <summary>Emitted from 1.1.0 on.</summary>
    public string? SocketPath { get; set; }

    /// <summary>Emitted from 1.1.0 on.</summary>
    public string? PciId { get; set; }
}
