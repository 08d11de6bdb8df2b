namespace Loom.Core.Model;

/// <summary>VXLAN settings; 8472 is the Linux kernel's historic port, which flannel also uses.</summary>
public sealed record TunnelConfig
{
    public TunnelProtocol Protocol { get; set; } = TunnelProtocol.Vxlan;

    public string Device { get; set; } = "loom.1";

    public int Vni { get; set; } = 1;

    public int Port { get; set; } = 8472;
}
