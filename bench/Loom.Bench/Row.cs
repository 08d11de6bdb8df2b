using System.Globalization;
using Loom.Linux;

namespace Loom.Bench;

/// <summary>
/// One plugin configuration under test with its own topology: a node namespace (where the plugin runs, as on a
/// real node) and N pod namespaces, all named <c>lb&lt;pid&gt;-&lt;key&gt;-...</c>, plus its own IPAM dataDir.
/// </summary>
internal sealed class Row : IDisposable
{
    private readonly List<string> _created = [];

    private const string Subnet = "10.88.0.0/24";

    public Row(string key, string title, string plugin, string pluginType, string ipamType, string prefix, string workDir, bool routed = false)
    {
        Key = key;
        Title = title;
        Plugin = plugin;
        Routed = routed;
        DataDir = Path.Combine(workDir, key + "-ipam");
        // Routed plumbing has no bridge keys (loom-cni refuses them there); everything else is the same config.
        var plumbing = routed ? "\"plumbing\": \"routed\"" : "\"bridge\": \"cni0\", \"isGateway\": true";
        Config = $$$"""
            {"cniVersion": "1.0.0", "name": "lbench", "type": "{{{pluginType}}}", {{{plumbing}}}, "ipMasq": false,
             "ipam": {"type": "{{{ipamType}}}", "ranges": [[{"subnet": "{{{Subnet}}}"}]], "dataDir": "{{{DataDir}}}"}}
            """;
        NodeName = $"{prefix}{key}-node";
        PodPrefix = $"{prefix}{key}-p";
    }

    public string Key { get; }

    public string Title { get; }

    /// <summary>Routed plumbing: the node gets its router device (as the agent would make it) before the timed part.</summary>
    public bool Routed { get; }

    public string Plugin { get; }

    public string Config { get; }

    public string DataDir { get; }

    public string NodeName { get; }

    public string PodPrefix { get; }

    public NetNsHandle? Node { get; private set; }

    public List<double> Add { get; } = [];

    public List<double> Del { get; } = [];

    public List<string> Warnings { get; } = [];

    public string PodPath(int i) => NetNs.RunDir + "/" + PodName(i);

    private string PodName(int i) => PodPrefix + i.ToString("000", CultureInfo.InvariantCulture);

    /// <summary>Creates the node namespace (lo up) and the pod namespaces; not timed.</summary>
    public void Create(int pods, CancellationToken cancel)
    {
        Directory.CreateDirectory(DataDir);
        NetNs.Create(NodeName);
        _created.Add(NodeName);
        Node = NetNs.Open(NodeName);
        using (var nl = Netlink.OpenIn(Node))
        {
            var lo = nl.LinkByName("lo") ?? throw new InvalidOperationException($"no lo in {NodeName}");
            nl.LinkSetUp(lo.Index);
            if (Routed)
            {
                RouterDevice.Ensure(nl, Loom.Core.Ipam.IpRange.DefaultGateway(System.Net.IPNetwork.Parse(Subnet)));
            }
        }

        for (var i = 0; i < pods; i++)
        {
            cancel.ThrowIfCancellationRequested();
            NetNs.Create(PodName(i));
            _created.Add(PodName(i));
        }
    }

    /// <summary>After a DEL phase: nothing may be left attached to the bridge (or routed: no pod veth, no host route) nor allocated in the IPAM store.</summary>
    public void CheckClean(string phase)
    {
        using (var nl = Netlink.OpenIn(Node!))
        {
            var bridge = nl.LinkByName("cni0");
            var ports = bridge is null ? 0 : nl.LinkList().Count(l => l.MasterIndex == bridge.Index);
            if (ports != 0)
            {
                Warnings.Add($"{phase}: {ports} veth(s) still attached to cni0 after DEL");
            }

            if (Routed)
            {
                var veths = nl.LinkList().Count(l => l.Kind == "veth" && l.Name != RouterDevice.DefaultName && l.Name != RouterDevice.DefaultPeerName);
                var routes = nl.RouteList(System.Net.Sockets.AddressFamily.InterNetwork).Count(r => r.Destination.PrefixLength == 32 && r.Scope == RouteScope.Link);
                if (veths + routes != 0)
                {
                    Warnings.Add($"{phase}: {veths} pod veth(s) and {routes} host route(s) left after DEL");
                }
            }
        }

        var leases = Directory.Exists(DataDir)
            ? Directory.EnumerateFiles(DataDir, "*", SearchOption.AllDirectories)
                .Select(Path.GetFileName)
                .Count(n => n is not null && n != "lock" && !n.StartsWith("last_reserved_ip", StringComparison.Ordinal))
            : 0;
        if (leases != 0)
        {
            Warnings.Add($"{phase}: {leases} address allocation(s) left in {DataDir} after DEL");
        }
    }

    public void Dispose()
    {
        Node?.Dispose();
        // Pods first: deleting a pod namespace destroys its veth, then the node takes the bridge with it.
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
