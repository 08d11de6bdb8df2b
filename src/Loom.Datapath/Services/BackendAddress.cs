using System.Globalization;
using System.Net;

namespace Loom.Datapath.Services;

/// <summary>One service backend as an address: a ready endpoint address and the target port traffic is DNAT-ed to.</summary>
public sealed record BackendAddress(IPAddress Address, int Port)
{
    /// <summary>
    /// The endpoint's pod runs on the node computing the state (kube-proxy's IsLocal): the only backends a Local
    /// traffic policy may use. Part of equality, so a state whose locality changed is written again.
    /// </summary>
    public bool IsLocal { get; init; }

    /// <summary><c>IP:port</c>, the form kube-proxy hashes endpoint chain names from and prints in comments.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Address}:{Port}");
}
