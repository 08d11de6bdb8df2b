using System.Net;
using System.Net.Sockets;
using Loom.Core.Policy;
using Loom.Datapath.Policy;
using Loom.Testing;
using static Loom.Datapath.Tests.Policy.PolicyLab;
using static Loom.Datapath.Tests.Routing.RoutedNodesLab;

namespace Loom.Datapath.Tests.Policy;

/// <summary>
/// What a pod may send at all: only from its own address (a forged source would borrow another pod's identity), and
/// no IPv6 (which the maps cannot judge) where a direction is enforced; ARP always.
/// </summary>
public sealed class PolicySourceTests : IDisposable
{
    private readonly PolicyLab _p = new();

    private TestNetns A => _p.Lab.Pod(1, 1);

    public void Dispose() => _p.Dispose();

    [Fact]
    public void A_pod_sending_from_another_pods_address_is_dropped_once_its_own_address_is_known()
    {
        // Pod (1, 2) lets in only pod (2, 1)'s identity; pod (1, 1) puts (2, 1)'s address on its eth0 and sends from it.
        _p.Endpoint(2, ingress: true, egress: false, [Udp(PolicyDirection.Ingress, Identity(2, 1), Port)]);
        var eth0 = A.Netlink.LinkByName("eth0")!;
        A.Netlink.AddrAdd(eth0.Index, PodIp(2, 1), 32);

        // Without its address in the endpoint entry the forged packet passes as (2, 1): the check below can fail.
        _p.Node.Run(() => _p.Policy.SetEndpoint(_p.Lab.Lxc(1, 1), 1, Identity(1, 1), false, false));
        var before = _p.Counters();
        SendFrom(PodIp(2, 1), PodIp(1, 2));
        var after = _p.Counters();
        Assert.True(after[PolicyReason.AllowedByRule] > before[PolicyReason.AllowedByRule], "the forged packet was not let in as (2, 1)");

        _p.Node.Run(() => _p.Policy.SetEndpoint(_p.Lab.Lxc(1, 1), 1, Identity(1, 1), false, false, PodIp(1, 1)));
        before = _p.Counters();
        SendFrom(PodIp(2, 1), PodIp(1, 2));
        after = _p.Counters();
        Assert.True(after[PolicyReason.DroppedSpoofed] > before[PolicyReason.DroppedSpoofed]);
        Assert.Equal(before[PolicyReason.AllowedByRule], after[PolicyReason.AllowedByRule]);

        // With policy off (mode never) the source is still checked: other nodes judge this pod's packets by it.
        _p.Node.Run(() => _p.Policy.SetConfig(enabled: false, allowHost: true, IPNetwork.Parse(ServiceRange)));
        before = _p.Counters();
        SendFrom(PodIp(2, 1), PodIp(1, 2));
        after = _p.Counters();
        Assert.True(after[PolicyReason.DroppedSpoofed] > before[PolicyReason.DroppedSpoofed], "a forged source passed with policy off");
        _p.Node.Run(() => _p.Policy.SetConfig(enabled: true, allowHost: true, IPNetwork.Parse(ServiceRange)));

        // Its own address still works (to an endpoint that lets it in).
        _p.Endpoint(2, ingress: true, egress: false, [Udp(PolicyDirection.Ingress, Identity(1, 1), Port)]);
        Assert.Equal(PodIp(1, 1).ToString(), Udp(A, PodIp(1, 2)));
    }

    [Fact]
    public void Ipv6_is_dropped_where_a_direction_is_enforced_and_passes_where_none_is()
    {
        // Routed pods share no link: the node pings pod (1, 2)'s link-local address over its veth.
        var ll = LinkLocal(_p.Lab.Pod(1, 2));
        var lxc = _p.Node.Netlink.LinkList().Single(l => l.Index == _p.Lab.Lxc(1, 2)).Name;
        Assert.True(Shell.InNetns(_p.Node.Name, ["sysctl", "-qw", $"net.ipv6.conf.{lxc}.disable_ipv6=0"]).Ok); // the lab's nodes have it off
        Shell.WaitFor(() => Ping6(_p.Node, ll, lxc), TimeSpan.FromSeconds(5)); // the link-local address is tentative (DAD) for a moment
        Assert.True(Ping6(_p.Node, ll, lxc), "IPv6 to the pod before any entry");
        _p.Endpoint(2, ingress: true, egress: false, [Tcp(PolicyDirection.Ingress, Identity(1, 1), Port)]);
        Assert.False(Ping6(_p.Node, ll, lxc), "IPv6 into an ingress-enforced pod");
        Assert.True(_p.Counters()[PolicyReason.DroppedNotIpv4] > 0);
        Assert.Equal(PodIp(1, 1).ToString(), Who(A, PodIp(1, 2))); // ARP still resolves: IPv4 by the rule works
        _p.Endpoint(2, ingress: false, egress: false);
        Assert.True(Ping6(_p.Node, ll, lxc), "IPv6 once nothing is enforced");
    }

    private void SendFrom(IPAddress source, IPAddress destination) => A.Run(() =>
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(source, 0));
        for (var i = 0; i < 3; i++)
        {
            s.SendTo("forged"u8.ToArray(), new IPEndPoint(destination, Port));
        }

        Thread.Sleep(200);
    });

    private static string LinkLocal(TestNetns pod)
    {
        var r = Shell.InNetns(pod.Name, ["ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"]);
        var word = r.Stdout.Split(' ', StringSplitOptions.RemoveEmptyEntries).SkipWhile(w => w != "inet6").Skip(1).FirstOrDefault()
                   ?? throw new InvalidOperationException("no IPv6 link-local address on eth0:\n" + r.Stdout);
        return word.Split('/')[0];
    }

    private static bool Ping6(TestNetns from, string ll, string device) =>
        Shell.InNetns(from.Name, [Shell.Require("ping"), "-6", "-n", "-c1", "-W2", ll + "%" + device]).Ok;
}
