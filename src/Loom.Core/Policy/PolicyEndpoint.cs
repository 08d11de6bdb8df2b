using System.Net;
using Loom.Core.Model;

namespace Loom.Core.Policy;

/// <summary>
/// A pod as the policy compiler sees it: where it lives, its labels (all of them: a policy's podSelector selects on
/// these, as the API server would), its identity, addresses and container ports (ingress named ports resolve on them).
/// </summary>
public sealed record PolicyEndpoint(
    string Namespace,
    string Name,
    IReadOnlyDictionary<string, string> Labels,
    uint Identity,
    IReadOnlyList<IPAddress> IPs,
    IReadOnlyList<ContainerPort> Ports)
{
    public string Key => ObjectKey.Of(Namespace, Name);
}
