using System.Net;
using Loom.Core.Model;

namespace Loom.Core.Policy;

/// <summary>One end of a connection for <see cref="PolicySemantics"/>: a pod (namespace, labels, address, container ports) or an address outside the cluster's pods.</summary>
public sealed record TrafficPeer(string? Namespace, IReadOnlyDictionary<string, string> Labels, IPAddress Ip, IReadOnlyList<ContainerPort> Ports)
{
    public bool IsPod => Namespace is not null;

    public static TrafficPeer Pod(string ns, IReadOnlyDictionary<string, string> labels, IPAddress ip, IReadOnlyList<ContainerPort> ports) => new(ns, labels, ip, ports);

    public static TrafficPeer External(IPAddress ip) => new(null, new Dictionary<string, string>(), ip, []);
}
