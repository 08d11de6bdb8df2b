using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Agent.Masq;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Linux.Bpf;
using Loom.Linux;
using Loom.Testing;
using static Loom.Agent.Tests.TestNodeNetworks;

namespace Loom.Agent.Tests.Masq;

/// <summary>
/// Real packets through the masquerade controller: a pod of network cilium on this node (10.245.1.2) talks to a
/// Flannel pod on "another node" (10.244.2.5, in a second namespace behind the underlay veth) and to an outside server
/// (that node's underlay address). Cross-network pod traffic keeps the pod's IP, the rest leaves as the node's IP.
/// </summary>
public sealed class MasqueradeTrafficTests : IDisposable
{
    private const int Port = 7070;
    private static readonly IPAddress NodeIp = IPAddress.Parse("192.168.50.11");
    private static readonly IPAddress Outside = IPAddress.Parse("192.168.50.12");
    private static readonly IPAddress RemotePod = IPAddress.Parse("10.244.2.5");
    private static int _counter;
    private readonly TestNetns _node = new("mnode");
    private readonly TestNetns _pod = new("mpod");
    private readonly TestNetns _remote = new("mremote");
    private readonly IStore _store = MemoryStore.Create();
    private readonly string _pins = Path.Combine(BpfFs.DefaultRoot, $"{RunPrefix.For("loom-test-")}{Interlocked.Increment(ref _counter)}-agentmasqtraffic");
    private readonly Socket? _server;
    private readonly CancellationTokenSource _stop = new();

    public MasqueradeTrafficTests()
    {
        try
        {
            Ip(_node, "link add ul0 type veth peer name ul0p");
            Ip(_node, $"link set ul0p netns {_remote.Name}");
            Ip(_node, "addr add 192.168.50.11/24 dev ul0");
            Ip(_node, "link set ul0 up");
            Ip(_node, "link add hv1 type veth peer name eth0");
            Ip(_node, $"link set eth0 netns {_pod.Name}");
            Ip(_node, "addr add 10.245.1.1/24 dev hv1");
            Ip(_node, "link set hv1 up");
            Ip(_node, "route add 10.244.2.0/24 via 192.168.50.12");
            Ip(_pod, "addr add 10.245.1.2/24 dev eth0");
            Ip(_pod, "link set eth0 up");
            Ip(_pod, "route add default via 10.245.1.1");
            Ip(_remote, "addr add 192.168.50.12/24 dev ul0p");
            Ip(_remote, "link set ul0p up");
            Ip(_remote, "link set lo up");
            Ip(_remote, "addr add 10.244.2.5/32 dev lo");
            Ip(_remote, "route add 10.245.1.0/24 via 192.168.50.11"); // the peer route a native network's node has
            _server = _remote.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            _server.Bind(new IPEndPoint(IPAddress.Any, Port));
            _server.Listen();
            _ = ServeAsync();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _server?.Dispose();
        _store.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _pod.Dispose();
        _remote.Dispose();
        _node.Dispose();
        if (Directory.Exists(_pins))
        {
            BpfFs.RemoveTree(_pins);
        }

        _stop.Dispose();
    }

    [Theory]
    [InlineData(Masquerade.Iptables)]
    [InlineData(Masquerade.Bpf)]
    public void Pods_reach_another_networks_pods_with_their_own_ip_and_the_outside_as_the_node(Masquerade masquerade)
    {
        var networks = new TestNodeNetworks(Flannel(), Cilium(masquerade));
        using var masq = new MasqueradeController(
            new NodeContext("n1", new AgentConfig { Node = "n1", Iface = "ul0", BpfPinDir = _pins }, new ClusterConfig(), NodeIp, 1500, IPNetwork.Parse("10.244.1.0/24")),
            networks, new AgentLoops(_store, TextWriter.Null));
        _node.Run(masq.Pass);

        Assert.Equal("10.245.1.2", SeenBy(RemotePod));
        Assert.Equal(NodeIp.ToString(), SeenBy(Outside));

        // Without the Flannel network the remote pod is just outside: masqueraded. So it was the rules that kept the IP.
        networks.Set(Cilium(masquerade));
        _node.Run(masq.Pass);
        Assert.Equal(NodeIp.ToString(), SeenBy(RemotePod));
        if (masquerade == Masquerade.Bpf)
        {
            Assert.True(_node.Run(() => masq.Bpf.Attached!.Counter(Loom.Datapath.Masquerade.MasqueradeMaps.Stat.Snat)) > 0);
        }
    }

    private static void Ip(TestNetns ns, string args)
    {
        var run = Shell.InNetns(ns.Name, ["ip", .. args.Split(' ')]);
        Assert.True(run.Ok, run.ToString());
    }

    /// <summary>The source address the server saw for a connection from the pod to <paramref name="to"/>.</summary>
    private string SeenBy(IPAddress to)
    {
        using var s = _pod.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        s.ReceiveTimeout = 3000;
        Assert.True(s.ConnectAsync(new IPEndPoint(to, Port)).Wait(3000), $"connect to {to} timed out");
        var buf = new byte[64];
        var n = s.Receive(buf);
        return Encoding.ASCII.GetString(buf, 0, n);
    }

    private async Task ServeAsync()
    {
        try
        {
            while (true)
            {
                using var c = await _server!.AcceptAsync(_stop.Token);
                await c.SendAsync(Encoding.ASCII.GetBytes(((IPEndPoint)c.RemoteEndPoint!).Address.ToString()), _stop.Token);
                c.Shutdown(SocketShutdown.Both);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // The test is over.
        }
    }
}
