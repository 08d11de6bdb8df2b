using System.Globalization;
using System.Net;
using Loom.Core.Model;
using Loom.Core.Policy;

namespace Loom.Core.Tests.Policy;

/// <summary>
/// A small cluster for policy tests: pods with identities numbered as an allocator would (kube-dns pods get the
/// reserved one), the input the compiler reads, and both verdicts on a connection: compiled-and-looked-up and direct.
/// </summary>
public sealed class PolicyWorld
{
    private readonly Dictionary<string, TrafficPeer> _peers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, PolicyEndpoint> _endpoints = new(StringComparer.Ordinal);

    public PolicyWorld(IEnumerable<NetworkPolicy> policies, IEnumerable<ClusterNamespace> namespaces,
        IEnumerable<(string Name, string Namespace, IReadOnlyDictionary<string, string> Labels, string Ip, IReadOnlyList<ContainerPort> Ports)> pods)
    {
        var nsMap = namespaces.ToDictionary(n => n.Name, StringComparer.Ordinal);
        var identities = new Dictionary<uint, SecurityLabels>();
        var byCanonical = new Dictionary<string, uint>(StringComparer.Ordinal);
        var next = ReservedIdentity.MinAllocated;
        foreach (var (name, ns, labels, ip, ports) in pods)
        {
            var nsLabels = nsMap.TryGetValue(ns, out var n) ? n.EffectiveLabels : new ClusterNamespace { Name = ns }.EffectiveLabels;
            var set = SecurityLabels.Of(ns, labels, nsLabels);
            if (!byCanonical.TryGetValue(set.Canonical, out var id))
            {
                id = SecurityLabels.IdentityFor(set) ?? next++;
                byCanonical[set.Canonical] = id;
                identities[id] = set;
            }

            var address = IPAddress.Parse(ip);
            _endpoints[name] = new PolicyEndpoint(ns, name, labels, id, [address], ports);
            _peers[name] = TrafficPeer.Pod(ns, labels, address, ports);
        }

        Input = new PolicyInput([.. policies], nsMap, identities, [.. _endpoints.Values]);
    }

    public PolicyInput Input { get; }

    public PolicyEndpoint Endpoint(string pod) => _endpoints[pod];

    /// <summary>A pod by name, or an external address (any other text).</summary>
    public TrafficPeer Peer(string podOrIp) => _peers.TryGetValue(podOrIp, out var p) ? p : TrafficPeer.External(IPAddress.Parse(podOrIp));

    public bool Compiled(string source, string destination, byte protocol, ushort port, PolicyEnforcementMode mode)
    {
        var src = Peer(source);
        var dst = Peer(destination);
        var egress = !_endpoints.TryGetValue(source, out var s)
            || PolicyLookup.Allows(PolicyCompiler.Compile(s, Input, mode), PolicyDirection.Egress, IdentityOf(destination), dst.Ip, protocol, port);
        var ingress = !_endpoints.TryGetValue(destination, out var d)
            || PolicyLookup.Allows(PolicyCompiler.Compile(d, Input, mode), PolicyDirection.Ingress, IdentityOf(source), src.Ip, protocol, port);
        return egress && ingress;
    }

    public bool Direct(string source, string destination, byte protocol, ushort port, PolicyEnforcementMode mode) =>
        PolicySemantics.Allowed(Input, Peer(source), Peer(destination), protocol, port, mode);

    public string Describe() => string.Join("\n", _endpoints.Values.Select(e =>
        string.Create(CultureInfo.InvariantCulture, $"{e.Name} {e.Namespace} {string.Join(",", e.Labels.Select(l => l.Key + "=" + l.Value))} id={e.Identity} ip={e.IPs[0]}")));

    private uint IdentityOf(string peer) => _endpoints.TryGetValue(peer, out var e) ? e.Identity : ReservedIdentity.World;
}
