using System.Net;
using System.Net.Sockets;
using Loom.Core.Policy;
using Loom.Datapath.Policy;
using Loom.Datapath.Tests.Routing;
using Loom.Linux.Bpf;
using Loom.Testing;
using static Loom.Datapath.Tests.Policy.PolicyLab;
using static Loom.Datapath.Tests.Routing.RoutedNodesLab;

namespace Loom.Datapath.Tests.Policy;

/// <summary>
/// eBPF network policy on node 1's pod veths (<see cref="PolicyLab"/>), real TCP, UDP and ICMP between pods on one node,
/// across nodes and from the node itself: what passes and what is dropped by identity, port, port prefix, ipBlock
/// region, direction and connection state, and the counters that say why.
/// </summary>
public sealed class PolicyKernelTests : IDisposable
{
    private const PolicyDirection In = PolicyDirection.Ingress;
    private const PolicyDirection Out = PolicyDirection.Egress;

    private readonly PolicyLab _p = new();

    private TestNetns A => _p.Lab.Pod(1, 1);

    private TestNetns C => _p.Lab.Pod(2, 1);

    private TestNetns D => _p.Lab.Pod(2, 2);

    public void Dispose() => _p.Dispose();

    [Fact]
    public void Unmanaged_veths_and_unenforced_endpoints_pass_and_enforcement_without_rules_drops()
    {
        Assert.Equal(PodIp(1, 1).ToString(), Who(A, PodIp(1, 2)));
        Assert.True(_p.Counters()[PolicyReason.PassedUnmanaged] > 0);

        _p.Endpoint(2, ingress: false, egress: false);
        Assert.Equal(PodIp(1, 1).ToString(), Who(A, PodIp(1, 2)));
        Assert.True(_p.Counters()[PolicyReason.AllowedNotEnforced] > 0);

        _p.Endpoint(2, ingress: true, egress: false);
        Assert.False(Connects(A, PodIp(1, 2)));
        Assert.False(Connects(C, PodIp(1, 2)));
        Assert.Null(RoutedNodesLab.Udp(A, PodIp(1, 2), 800));
        var c = _p.Counters();
        Assert.True(c[PolicyReason.DroppedIngress] > 0, Show(c));
        Assert.Equal(0UL, c[PolicyReason.AllowedByRule]);

        // The node itself still reaches the pod (allow-host): a connection from the node's namespace.
        Assert.True(Connects(_p.Node, PodIp(1, 2)));
        Assert.True(_p.Counters()[PolicyReason.AllowedHost] > 0);
    }

    [Fact]
    public void A_rule_allows_its_identity_and_port_only()
    {
        _p.Endpoint(2, ingress: true, egress: false, [Tcp(In, Identity(1, 1), 7001)]);
        Assert.False(Connects(A, PodIp(1, 2)));

        _p.Rules(2, Tcp(In, Identity(1, 1), 7001), Tcp(In, Identity(1, 1), Port));
        Assert.Equal(PodIp(1, 1).ToString(), Who(A, PodIp(1, 2)));
        Assert.False(Connects(C, PodIp(1, 2)), "another identity");
        Assert.Null(RoutedNodesLab.Udp(A, PodIp(1, 2), 800));

        var c = _p.Counters();
        Assert.True(c[PolicyReason.AllowedByRule] > 0, Show(c));
        Assert.True(c[PolicyReason.DroppedIngress] > 0, Show(c));

        // Counted per direction of the endpoint: its rule and its drops on ingress, the replies it sends on egress.
        var d = _p.Node.Run(_p.Policy.CountersByDirection);
        Assert.True(d[(PolicyReason.AllowedByRule, In)] > 0);
        Assert.Equal(0UL, d[(PolicyReason.AllowedByRule, Out)]);
        Assert.Equal(d[(PolicyReason.DroppedIngress, In)], c[PolicyReason.DroppedIngress]);
        Assert.True(d[(PolicyReason.AllowedReply, Out)] > 0);
        Assert.Equal(0UL, d[(PolicyReason.AllowedReply, In)]);
    }

    [Fact]
    public void Port_prefixes_any_peer_and_ipblock_regions_with_an_except()
    {
        // 7000/13 is 7000-7007; 7008/13 does not hold 7000.
        _p.Endpoint(2, ingress: true, egress: false, [Tcp(In, Identity(1, 1), 7008, 13)]);
        Assert.False(Connects(A, PodIp(1, 2)));
        _p.Rules(2, Tcp(In, Identity(1, 1), 7000, 13));
        Assert.True(Connects(A, PodIp(1, 2)));
        Assert.False(Connects(C, PodIp(1, 2)));

        // Identity 0: any peer.
        _p.Rules(2, Tcp(In, 0, Port));
        Assert.True(Connects(C, PodIp(1, 2)));
        Assert.True(Connects(D, PodIp(1, 2)));

        // ipBlock 10.245.2.0/24 except 10.245.2.12/32: pod (2, 1) is in the region, pod (2, 2) in the except.
        const uint region = ReservedIdentity.CidrBase + 1;
        const uint except = ReservedIdentity.CidrBase + 2;
        _p.Endpoint(2, ingress: true, egress: false, [Tcp(In, region, Port)],
            [new PolicyCidr(In, IPNetwork.Parse("10.245.2.0/24"), region), new PolicyCidr(In, IPNetwork.Parse("10.245.2.12/32"), except)]);
        Assert.True(Connects(C, PodIp(1, 2)));
        Assert.False(Connects(D, PodIp(1, 2)));
        Assert.False(Connects(A, PodIp(1, 2)), "outside the block");
    }

    [Fact]
    public void Egress_rules_judge_the_destination_and_replies_pass_where_new_flows_are_denied()
    {
        // Pod 1 may open TCP to pod 2 and ping it, nothing else; its ingress is isolated with no rule.
        _p.Endpoint(1, ingress: true, egress: true, [Tcp(Out, Identity(1, 2), Port), new PolicyRule(Out, Identity(1, 2), 1, 0, 0)]);
        Assert.Equal(PodIp(1, 1).ToString(), Who(A, PodIp(1, 2)));
        Assert.True(Ping(A, PodIp(1, 2)));
        Assert.False(Connects(A, PodIp(2, 1)));
        Assert.False(Ping(A, PodIp(2, 1)));
        Assert.False(Connects(_p.Lab.Pod(1, 2), PodIp(1, 1)), "pod 1's ingress is isolated");

        var c = _p.Counters();
        Assert.True(c[PolicyReason.DroppedEgress] > 0, Show(c));
        Assert.True(c[PolicyReason.AllowedReply] > 0, Show(c));
    }

    [Fact]
    public void Udp_is_allowed_by_its_own_rules_both_ways_and_its_replies_pass()
    {
        _p.Endpoint(1, ingress: true, egress: true, [Udp(Out, Identity(1, 2), Port)]);
        _p.Endpoint(2, ingress: true, egress: true, [Udp(In, Identity(1, 1), Port)]);
        Assert.Equal(PodIp(1, 1).ToString(), RoutedNodesLab.Udp(A, PodIp(1, 2)));
        Assert.Null(RoutedNodesLab.Udp(_p.Lab.Pod(1, 2), PodIp(1, 1), 800));
        Assert.False(Connects(A, PodIp(1, 2)), "TCP has no rule");
        Assert.Null(RoutedNodesLab.Udp(A, PodIp(2, 1), 800));
    }

    [Fact]
    public void A_connection_established_before_a_deny_keeps_working_and_a_new_one_fails()
    {
        const int port = 7100;
        using var listener = _p.Lab.Pod(1, 2).Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        listener.Bind(new IPEndPoint(IPAddress.Any, port));
        listener.Listen();
        _p.Endpoint(1, ingress: false, egress: false);
        _p.Endpoint(2, ingress: true, egress: false, [Tcp(In, Identity(1, 1), port)]);

        using var client = PodNetwork.Connect(A, PodIp(1, 2), port, 3000);
        using var server = listener.Accept();
        Echo(client, server, "before");

        // Both ends recorded it: pod 1's egress (not enforced) and pod 2's ingress, each under its endpoint.
        var flows = _p.Node.Run(_p.Policy.Connections).Where(e => e.Key.DestinationPort == LbMaps.PortToNetwork(port)).ToList();
        Assert.Contains(flows, e => e.Key.Direction == (byte)Out && e.Value.EndpointId == 1 && e.Key.SourceAddress == LbMaps.ToNetwork(PodIp(1, 1)));
        Assert.Contains(flows, e => e.Key.Direction == (byte)In && e.Value.EndpointId == 2 && e.Key.DestinationAddress == LbMaps.ToNetwork(PodIp(1, 2)));

        _p.Rules(2);
        Echo(client, server, "after");
        Assert.False(Connects(A, PodIp(1, 2), port));
        Assert.True(_p.Counters()[PolicyReason.AllowedEstablished] > 0);

        // Forgotten (as for a deleted pod), the flow is judged again: its next packet is dropped.
        Assert.True(_p.Node.Run(() => _p.Policy.ForgetConnections(2)) > 0);
        client.Send("lost"u8);
        server.ReceiveTimeout = 1000;
        Assert.Throws<SocketException>(() => server.Receive(new byte[16]));
    }

    [Fact]
    public void A_closed_connection_is_forgotten_a_new_one_on_the_same_ports_is_judged_again()
    {
        const int clientPort = 40123;
        _p.Endpoint(2, ingress: true, egress: false, [Tcp(In, Identity(1, 1), Port)]);
        Assert.Equal(PodIp(1, 1).ToString(), WhoFrom(clientPort));
        // The same four-tuple again (the server closed first, so the client port is free): a new connection, allowed.
        Assert.Equal(PodIp(1, 1).ToString(), WhoFrom(clientPort));

        _p.Rules(2);
        // Its closing entry does not carry a new SYN: denied like any new flow.
        Assert.Null(WhoFrom(clientPort));
    }

    [Fact]
    public void An_icmp_error_about_an_allowed_flow_passes_an_isolated_ingress()
    {
        // Pod 1 takes nothing in; its UDP to a closed port of pod 2 gets the port-unreachable back (related).
        _p.Endpoint(1, ingress: true, egress: false);
        using var s = A.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        s.ReceiveTimeout = 2000;
        s.Connect(new IPEndPoint(PodIp(1, 2), 7002));
        s.Send("x"u8);
        var e = Assert.Throws<SocketException>(() => s.Receive(new byte[16]));
        Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
        Assert.True(_p.Counters()[PolicyReason.AllowedRelated] > 0);

        // An echo request quoted by an error: the node answers a ping to an unreachable network with one.
        _p.Node.Netlink.RouteAdd(new Loom.Linux.Route(IPNetwork.Parse("198.51.100.0/24")) { Type = Loom.Linux.RouteType.Unreachable });
        var related = _p.Counters()[PolicyReason.AllowedRelated];
        Assert.False(Ping(A, IPAddress.Parse("198.51.100.7")));
        Assert.True(_p.Counters()[PolicyReason.AllowedRelated] > related);

        // A message about nothing pod 1 sent is a new flow, denied: pod 2 pings pod 1 (an echo request, not related).
        Assert.False(Ping(_p.Lab.Pod(1, 2), PodIp(1, 1)));
    }

    [Fact]
    public void An_expired_entry_is_absent_the_flows_next_packet_is_judged_again()
    {
        _p.Endpoint(2, ingress: true, egress: false, [Udp(In, Identity(1, 1), Port)]);
        using var s = A.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        s.ReceiveTimeout = 1500;
        s.Connect(new IPEndPoint(PodIp(1, 2), Port));
        Assert.True(Exchange(s));
        _p.Rules(2);
        Assert.True(Exchange(s), "established");

        // 61 s of silence, written into the entry: past UDP's 60 s lifetime.
        var map = _p.Policy.Loaded.Map<PolCtKey, PolCtValue>(PolicyMaps.ConnTrack);
        var udp = map.Entries().Where(e => e.Key.Protocol == (byte)ProtocolType.Udp && e.Value.EndpointId == 2).ToList();
        Assert.NotEmpty(udp);
        foreach (var (key, value) in udp)
        {
            map.Update(key, value with { LastSeenNs = value.LastSeenNs - 61_000_000_000UL });
        }

        Assert.False(Exchange(s));
        Assert.True(_p.Counters()[PolicyReason.DroppedIngress] > 0);
    }

    [Fact]
    public void A_connection_opened_before_enforcement_survives_it()
    {
        const int port = 7101;
        using var listener = _p.Lab.Pod(1, 2).Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        listener.Bind(new IPEndPoint(IPAddress.Any, port));
        listener.Listen();
        _p.Endpoint(2, ingress: false, egress: false);
        using var client = PodNetwork.Connect(A, PodIp(1, 2), port, 3000);
        using var server = listener.Accept();
        Echo(client, server, "open");

        _p.Endpoint(2, ingress: true, egress: true);
        Echo(client, server, "isolated");
        Assert.False(Connects(A, PodIp(1, 2), port));
    }

    [Fact]
    public void Disabled_policy_passes_everything()
    {
        _p.Endpoint(2, ingress: true, egress: true);
        Assert.False(Connects(A, PodIp(1, 2)));
        _p.Node.Run(() => _p.Policy.SetConfig(enabled: false, allowHost: true, null));
        Assert.True(Connects(A, PodIp(1, 2)));
        Assert.True(_p.Counters()[PolicyReason.PassedDisabled] > 0);
    }

    /// <summary>The lab server's answer to pod 1 connecting from a fixed source port, or null.</summary>
    private string? WhoFrom(int clientPort)
    {
        using var s = A.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        s.Bind(new IPEndPoint(PodIp(1, 1), clientPort));
        using var cts = new CancellationTokenSource(1500);
        try
        {
            s.ConnectAsync(new IPEndPoint(PodIp(1, 2), Port), cts.Token).AsTask().GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
            return null;
        }

        s.ReceiveTimeout = 3000;
        var buf = new byte[64];
        var text = new System.Text.StringBuilder();
        int n;
        while ((n = s.Receive(buf)) > 0)
        {
            text.Append(System.Text.Encoding.ASCII.GetString(buf, 0, n));
        }

        return text.ToString().Trim();
    }

    private static bool Exchange(Socket udp)
    {
        udp.Send("ping"u8);
        try
        {
            return udp.Receive(new byte[64]) > 0;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
        {
            return false;
        }
    }

    private static void Echo(Socket client, Socket server, string text)
    {
        var bytes = System.Text.Encoding.ASCII.GetBytes(text);
        client.Send(bytes);
        server.ReceiveTimeout = 2000;
        client.ReceiveTimeout = 2000;
        var buf = new byte[64];
        var n = server.Receive(buf);
        Assert.Equal(text, System.Text.Encoding.ASCII.GetString(buf, 0, n));
        server.Send(buf.AsSpan(0, n));
        n = client.Receive(buf);
        Assert.Equal(text, System.Text.Encoding.ASCII.GetString(buf, 0, n));
    }

    private static string Show(IReadOnlyDictionary<PolicyReason, ulong> c) =>
        string.Join(", ", c.Where(e => e.Value != 0).Select(e => $"{e.Key}={e.Value}"));
}
