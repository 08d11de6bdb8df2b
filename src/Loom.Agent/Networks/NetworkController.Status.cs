using Loom.Core.Model;
using Loom.Datapath.Networks;
using Loom.Linux;

namespace Loom.Agent.Networks;

internal sealed partial class NetworkController
{
    private IReadOnlyList<NetworkView> _views = [];

    /// <summary>One network as <c>loom status</c> shows it: what is published plus its device and peers.</summary>
    internal sealed record NetworkView(NetworkOnNode Network, Link? Device, IReadOnlyList<NetworkPeer> Peers);

    /// <summary>A snapshot for status, taken at the end of every pass (the status call never touches the live instances).</summary>
    public IReadOnlyList<NetworkView> Views => Volatile.Read(ref _views);

    /// <summary>The default network's tunnel device (its MAC mirrors onto the node object's legacy <c>vtepMac</c>).</summary>
    public Link? DefaultTunnel => Views.FirstOrDefault(v => v.Network.Name == DefaultNetwork)?.Device;

    /// <summary>This node's share of every network, for its node object.</summary>
    public IReadOnlyDictionary<string, NodeNetwork> NodeEntries() =>
        Views.ToDictionary(v => v.Network.Name, v => new NodeNetwork { PodCidr = v.Network.Block, VtepMac = v.Device is { } d ? MacAddress.Format(d.HardwareAddr) : null },
            StringComparer.Ordinal);

    private void TakeViews(IReadOnlyList<NetworkOnNode> published)
    {
        var views = published.Select(p => _networks.TryGetValue(p.Name, out var i)
            ? new NetworkView(p, i.Device, [.. i.Routes.Reconciler.Desired.Values.OrderBy(x => x.Node, StringComparer.Ordinal)])
            : new NetworkView(p, null, [])).ToList();
        Volatile.Write(ref _views, views);
    }
}
