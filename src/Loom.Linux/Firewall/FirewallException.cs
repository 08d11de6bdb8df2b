namespace Loom.Linux.Firewall;

/// <summary>A firewall tool (iptables-restore, nft) refused a change; the message carries its stderr.</summary>
public sealed class FirewallException : Exception
{
    public FirewallException(string message)
        : base(message)
    {
    }

    public FirewallException(string message, Exception inner)
        : base(message, inner)
    {
    }

    public FirewallException()
    {
    }
}
