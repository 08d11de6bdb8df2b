using System.Globalization;
using System.Net;
using Loom.Linux;

namespace Loom.Bench.Services;

/// <summary>
/// One node as the services bench sees it, all inside namespaces named <c>lbs&lt;pid&gt;-&lt;backend&gt;-*</c>:
/// the node namespace (where the service backend programs its rules, ip_forward on), a client pod at 10.244.1.2 and
/// four backend pods at 10.244.1X.2 (X = 1..4), each behind a veth whose node end is the pod's gateway (.1). Every
/// backend pod runs a TCP server on <see cref="BackendPort"/> that reads a 4-byte request and answers its own
/// 4-byte name (<c>be1\n</c> ...). Nothing is created in the machine's own namespace; the node has no route out.
/// </summary>
internal sealed class SvcTopology : IDisposable
{
    public const int BackendPort = 8080;
    public const int Backends = 4;
    public static readonly IPAddress ClientIp = IPAddress.Parse("10.244.1.2");

    private readonly List<string> _created = [];
    private readonly List<NetNsHandle> _handles = [];
    private readonly List<AnswerServer> _servers = [];

    public SvcTopology(string prefix)
    {
        Prefix = prefix;
    }

    public string Prefix { get; }

    public NetNsHandle Node { get; private set; } = null!;

    public NetNsHandle Client { get; private set; } = null!;

    /// <summary>ifindex (in the node namespace) of the client pod's host-side veth: where the eBPF backend's tc programs go.</summary>
    public int ClientVethIndex { get; private set; }

    public static IPAddress BackendIp(int k) => IPAddress.Parse(string.Create(CultureInfo.InvariantCulture, $"10.244.{10 + k}.2"));

    /// <summary>The 4-byte answer of backend pod k (1-based).</summary>
    public static string Answer(int k) => string.Create(CultureInfo.InvariantCulture, $"be{k}\n");

    public void Create()
    {
        Node = Open("node");
        using var nl = Netlink.OpenIn(Node);
        nl.LinkSetUp(nl.LinkByName("lo")!.Index);
        NetNs.Run(Node, () => Sysctl.Set("net.ipv4.ip_forward", "1"));

        Client = Open("client");
        ClientVethIndex = Pod(nl, Client, "vclient", 1, ClientIp);
        for (var k = 1; k <= Backends; k++)
        {
            var be = Open("be" + k.ToString(CultureInfo.InvariantCulture));
            Pod(nl, be, "vbe" + k.ToString(CultureInfo.InvariantCulture), 10 + k, BackendIp(k));
            Serve(be, Answer(k));
        }
    }

    public void Dispose()
    {
        foreach (var s in _servers)
        {
            s.Dispose();
        }

        foreach (var h in _handles)
        {
            h.Dispose();
        }

        // Pods first (their veths go with them), then the node with everything the backend programmed in it.
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

    private NetNsHandle Open(string tag)
    {
        var name = Prefix + tag;
        NetNs.Create(name);
        _created.Add(name);
        var h = NetNs.Open(name);
        _handles.Add(h);
        return h;
    }

    private static int Pod(INetlink nodeNl, NetNsHandle pod, string vethName, int subnet, IPAddress ip)
    {
        var gw = IPAddress.Parse(string.Create(CultureInfo.InvariantCulture, $"10.244.{subnet}.1"));
        var veth = nodeNl.LinkAdd(new VethSpec(vethName, "eth0") { PeerNetNs = pod });
        nodeNl.AddrAdd(veth.Index, gw, 24);
        nodeNl.LinkSetUp(veth.Index);
        using var pnl = Netlink.OpenIn(pod);
        pnl.LinkSetUp(pnl.LinkByName("lo")!.Index);
        var eth0 = pnl.LinkByName("eth0")!;
        pnl.AddrAdd(eth0.Index, ip, 24);
        pnl.LinkSetUp(eth0.Index);
        pnl.RouteAdd(new Route(IPNetwork.Parse("0.0.0.0/0")) { Gateway = gw });
        return veth.Index;
    }

    private void Serve(NetNsHandle pod, string answer) => _servers.Add(AnswerServer.Start(pod, BackendPort, answer));
}
