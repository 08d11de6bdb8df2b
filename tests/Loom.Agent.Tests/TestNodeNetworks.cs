using System.Net;
using Loom.Agent.Networks;
using Loom.Core.Model;

namespace Loom.Agent.Tests;

/// <summary>The networks a test says this node runs; <see cref="Set"/> replaces them and raises Changed, as the network controller does.</summary>
internal sealed class TestNodeNetworks(params NetworkOnNode[] networks) : INodeNetworks
{
    public IReadOnlyList<NetworkOnNode> Current { get; private set; } = networks;

    public string? Primary => Current.Count > 0 ? Current[0].Name : null;

    public event Action? Changed;

    public void Set(params NetworkOnNode[] networks)
    {
        Current = networks;
        Changed?.Invoke();
    }

    /// <summary>Today's Flannel network with this node's block.</summary>
    public static NetworkOnNode Flannel(string block = "10.244.1.0/24") => new(Network.Flannel(), IPNetwork.Parse(block)) { Ready = true };

    /// <summary>The scenario's Cilium network: 10.245.0.0/16, routed, native, eBPF host routing and masquerade by default.</summary>
    public static NetworkOnNode Cilium(Masquerade masquerade = Masquerade.Bpf, string? nativeRoutingCidr = null, string block = "10.245.1.0/24", string name = "cilium", string pool = "10.245.0.0/16") =>
        new(new Network
        {
            Name = name,
            PodCidr = IPNetwork.Parse(pool),
            Plumbing = Plumbing.Routed,
            RoutingMode = RoutingMode.Native,
            AutoDirectNodeRoutes = true,
            NativeRoutingCidr = nativeRoutingCidr is null ? null : IPNetwork.Parse(nativeRoutingCidr),
            HostRouting = masquerade == Masquerade.Iptables ? HostRouting.Legacy : HostRouting.Bpf,
            Masquerade = masquerade,
        }, IPNetwork.Parse(block)) { Ready = true };
}
