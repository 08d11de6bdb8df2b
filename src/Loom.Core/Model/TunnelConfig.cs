namespace Loom.Core.Model;

/// <summary>VXLAN settings; 8472 is the Linux kernel's historic port, which flannel also uses.</summary>
public sealed record TunnelConfig
{
    public string Device { get; init; } = "loom.1";

    public int Vni { get; init; } = 1;

    public int Port { get; init; } = 8472;
}
