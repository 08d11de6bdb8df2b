using System.Diagnostics;
using System.Globalization;
using System.Net;
using Loom.Linux;

namespace Loom.Bench;

/// <summary>
/// The kernel's floor for one plumbing: the objects an ADD makes (bridge: veth with its peer created straight in the
/// pod netns, master, up, the pod's address, link up and default route; routed: the same veth with an alias, the pod's
/// /32, the router's link route, permanent neighbour and default route, the host's /32 route) and the DEL (the veth,
/// deleted from the pod's side as the plugin does), made by an in-process loop over Loom.Linux's netlink on a dedicated
/// thread in the node namespace: no exec, no IPAM, no config. A plugin's p50 minus this row's is what it adds.
/// </summary>
internal sealed class Floor : IDisposable
{
    private const string Bridge = "cni0";
    private static readonly IPAddress Gateway = IPAddress.Parse("10.88.0.1");
    private readonly List<string> _created = [];

    public Floor(string key, string title, bool routed, string prefix)
    {
        Key = key;
        Title = title;
        Routed = routed;
        NodeName = $"{prefix}{key}-node";
        PodPrefix = $"{prefix}{key}-p";
    }

    public string Key { get; }

    public string Title { get; }

    public bool Routed { get; }

    public string NodeName { get; }

    public string PodPrefix { get; }

    public List<double> Add { get; } = [];

    public List<double> Del { get; } = [];

    private NetNsHandle? Node { get; set; }

    /// <summary>Node namespace with its bridge (gateway on it, up) or router device, and the pod namespaces; not timed.</summary>
    public void Create(int pods, CancellationToken cancel)
    {
        NetNs.Create(NodeName);
        _created.Add(NodeName);
        Node = NetNs.Open(NodeName);
        using (var nl = Netlink.OpenIn(Node))
        {
            nl.LinkSetUp((nl.LinkByName("lo") ?? throw new InvalidOperationException($"no lo in {NodeName}")).Index);
            if (Routed)
            {
                RouterDevice.Ensure(nl, Gateway);
            }
            else
            {
                // What the plugin's first ADD leaves: the bridge, up, with the gateway (that ADD is a warm-up in every row).
                var bridge = nl.LinkAdd(new BridgeSpec(Bridge));
                nl.LinkSetUp(bridge.Index);
                nl.AddrAdd(bridge.Index, Gateway, 24);
            }
        }

        for (var i = 0; i < pods; i++)
        {
            cancel.ThrowIfCancellationRequested();
            NetNs.Create(PodName(i));
            _created.Add(PodName(i));
        }
    }

    /// <summary>One round: warm-up pairs, then ADD of every pod, then DEL of every pod, each timed alone.</summary>
    public void Run(int pods, int warmup, CancellationToken cancel)
    {
        NetNs.Run(Node!, () =>
        {
            using var host = Netlink.Open();
            for (var w = 0; w < warmup; w++)
            {
                cancel.ThrowIfCancellationRequested();
                AddPod(host, w % pods);
                DelPod(host, w % pods);
            }

            GC.Collect();
            for (var i = 0; i < pods; i++)
            {
                cancel.ThrowIfCancellationRequested();
                var t0 = Stopwatch.GetTimestamp();
                AddPod(host, i);
                Add.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            }

            GC.Collect();
            for (var i = 0; i < pods; i++)
            {
                cancel.ThrowIfCancellationRequested();
                var t0 = Stopwatch.GetTimestamp();
                DelPod(host, i);
                Del.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            }
        });
    }

    private void AddPod(INetlink host, int i)
    {
        using var podNs = NetNs.Open(PodName(i));
        using var pod = Netlink.OpenIn(podNs);
        var hostName = HostVethName(i);
        var hostLink = host.LinkAdd(new VethSpec(hostName, "eth0") { PeerNetNs = podNs });
        var podLink = pod.LinkByName("eth0") ?? throw new InvalidOperationException($"eth0 did not appear in {PodName(i)}");
        var ip = PodIp(i);
        if (Routed)
        {
            host.LinkSetAlias(hostLink.Index, "loom-bench-floor");
            host.LinkSetUp(hostLink.Index);
            pod.AddrAdd(podLink.Index, ip, 32);
            pod.LinkSetUp(podLink.Index);
            pod.NeighSet(new Neigh(podLink.Index, Gateway, hostLink.HardwareAddr));
            pod.RouteAdd(new Route(new IPNetwork(Gateway, 32)) { OutputIndex = podLink.Index, Scope = RouteScope.Link });
            pod.RouteAdd(new Route(new IPNetwork(IPAddress.Any, 0)) { Gateway = Gateway, OutputIndex = podLink.Index });
            host.RouteReplace(new Route(new IPNetwork(ip, 32)) { OutputIndex = hostLink.Index, Scope = RouteScope.Link });
        }
        else
        {
            var bridge = host.LinkByName(Bridge) ?? throw new InvalidOperationException($"no {Bridge} in {NodeName}");
            host.LinkSetMaster(hostLink.Index, bridge.Index);
            host.LinkSetUp(hostLink.Index);
            pod.AddrAdd(podLink.Index, ip, 24);
            pod.LinkSetUp(podLink.Index);
            pod.RouteAdd(new Route(new IPNetwork(IPAddress.Any, 0)) { Gateway = Gateway, OutputIndex = podLink.Index });
        }
    }

    private void DelPod(INetlink host, int i)
    {
        using var podNs = NetNs.Open(PodName(i));
        using var pod = Netlink.OpenIn(podNs);
        var link = pod.LinkByName("eth0") ?? throw new InvalidOperationException($"no eth0 in {PodName(i)} to delete");
        pod.LinkDel(link.Index); // takes the host side and every route through it along
        if (host.LinkByName(HostVethName(i)) is not null)
        {
            throw new InvalidOperationException($"{HostVethName(i)} outlived its peer");
        }
    }

    private static IPAddress PodIp(int i) => new([10, 88, 0, (byte)(2 + i)]);

    private static string HostVethName(int i) => "vfl" + i.ToString("000", CultureInfo.InvariantCulture);

    private string PodName(int i) => PodPrefix + i.ToString("000", CultureInfo.InvariantCulture);

    public void Dispose()
    {
        Node?.Dispose();
        foreach (var name in Enumerable.Reverse(_created))
        {
            try
            {
                NetNs.Delete(name);
            }
            catch (LinuxException e)
            {
                Console.Error.WriteLine($"bench: cannot delete netns {name}: {e.Message}");
            }
        }

        _created.Clear();
    }
}
