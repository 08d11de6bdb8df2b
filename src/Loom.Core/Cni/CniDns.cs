namespace Loom.Core.Cni;

/// <summary>DNS settings, in both network configurations and results.</summary>
public sealed class CniDns
{
    public IList<string> Nameservers { get; } = [];

    public string? Domain { get; set; }

    public IList<string> Search { get; } = [];

    public IList<string> Options { get; } = [];

    /// <summary>Empty DNS is omitted from results, as the Go types do.</summary>
    public bool IsEmpty => Nameservers.Count == 0 && string.IsNullOrEmpty(Domain) && Search.Count == 0 && Options.Count == 0;
}
