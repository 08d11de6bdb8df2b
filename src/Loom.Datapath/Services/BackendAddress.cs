using System.Globalization;
using System.Net;

namespace Loom.Datapath.Services;

/// <summary>One service backend as an address: a ready endpoint address and the target port traffic is DNAT-ed to.</summary>
public sealed record BackendAddress(IPAddress Address, int Port)
{
    /// <summary><c>IP:port</c>, the form kube-proxy hashes endpoint chain names from and prints in comments.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Address}:{Port}");
}
