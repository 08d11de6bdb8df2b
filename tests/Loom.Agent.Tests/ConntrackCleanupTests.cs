using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Agent.Services;
using Loom.Core.Model;
using Loom.Core.Reconcile;
using Loom.Core.Store;
using Loom.Datapath.Services;
using Loom.Store;
using Xunit.Abstractions;
using static Loom.Agent.Tests.UdpServiceLab;

namespace Loom.Agent.Tests;

/// <summary>
/// kube-proxy's UDP conntrack cleanup through the services operations: which entries a change makes stale, and real
/// datagrams from one fixed source port through the iptables and nftables backends in a namespace, moved off a removed
/// endpoint by the cleanup (and not moved without it).
/// </summary>
public sealed class ConntrackCleanupTests(ITestOutputHelper output)
{
    private const string Key = "default/dns:dns/UDP";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(1);

    [Fact]
    public void A_gone_endpoint_makes_its_entries_to_every_frontend_stale()
    {
        var before = Udp("10.96.0.53", 53, 1, 2) with { NodePort = 30053, ExternalIps = [IPAddress.Parse("192.168.10.50")] };
        var after = before with { Backends = [Backend(2)] };
        var filters = ConntrackCleanup.Plan(before, after).ToList();
        Assert.Equal(
            [
                new ConntrackFilter(IPAddress.Parse("10.96.0.53"), 53, Backend(1)),
                new ConntrackFilter(IPAddress.Parse("192.168.10.50"), 53, Backend(1)),
                new ConntrackFilter(null, 30053, Backend(1)),
            ],
            filters);
    }

    [Fact]
    public void A_service_given_its_first_endpoints_or_removed_clears_its_frontends_and_tcp_clears_nothing()
    {
        var empty = Udp("10.96.0.53", 53) with { NodePort = 30053 };
        var active = empty with { Backends = [Backend(1)] };
        Assert.Equal([new ConntrackFilter(IPAddress.Parse("10.96.0.53"), 53, null), new ConntrackFilter(null, 30053, null)], ConntrackCleanup.Plan(empty, active));
        Assert.Equal([new ConntrackFilter(IPAddress.Parse("10.96.0.53"), 53, null), new ConntrackFilter(null, 30053, null)], ConntrackCleanup.Plan(null, active));
        Assert.Equal([new ConntrackFilter(IPAddress.Parse("10.96.0.53"), 53, null), new ConntrackFilter(null, 30053, null)], ConntrackCleanup.Plan(active, null));
        Assert.Empty(ConntrackCleanup.Plan(active, active));
        Assert.Empty(ConntrackCleanup.Plan(null, empty));

        var tcp = active with { Frontend = active.Frontend with { Protocol = Protocol.Tcp } };
        Assert.Empty(ConntrackCleanup.Plan(tcp, tcp with { Backends = [] }));
        Assert.Empty(ConntrackCleanup.Plan(null, tcp));

        // A whole write: every key's before and after, a filter once.
        var all = ConntrackCleanup.Plan(new Dictionary<string, ServicePortState> { ["a"] = active, ["b"] = active }, new Dictionary<string, ServicePortState>());
        Assert.Equal(2, all.Count);
    }

    [Theory]
    [InlineData(ServiceProxyMode.Iptables)]
    [InlineData(ServiceProxyMode.Nftables)]
    public async Task A_udp_client_moves_to_a_live_endpoint_within_a_second_of_its_endpoint_going(ServiceProxyMode kind)
    {
        using var lab = new UdpServiceLab();
        var elapsed = await MoveAsync(lab, kind, clean: true);
        output.WriteLine($"{kind}: first answer from the live endpoint {elapsed.TotalMilliseconds:0} ms after the write began");
        Assert.True(elapsed < Deadline, $"{kind}: the client moved after {elapsed.TotalMilliseconds:0} ms");
    }

    [Fact]
    public async Task Without_the_cleanup_the_client_stays_on_the_removed_endpoint()
    {
        using var lab = new UdpServiceLab();
        var elapsed = await MoveAsync(lab, ServiceProxyMode.Iptables, clean: false);
        Assert.Equal(TimeSpan.MaxValue, elapsed);
    }

    [Fact]
    public void A_node_port_filter_deletes_entries_to_local_addresses_only()
    {
        using var lab = new UdpServiceLab();
        // As a node port rule would: any destination on port 30053 to pod1 (the nodes' rules come from the backends).
        var r = Loom.Testing.Shell.InNetns(lab.Node.Name, ["iptables", "-t", "nat", "-A", "OUTPUT", "-p", "udp", "--dport", "30053", "-j", "DNAT", "--to-destination", "10.244.1.2:5353"]);
        Assert.True(r.Ok, r.ToString());
        using var client = lab.Client(40200);
        Assert.Equal("pod1", Ask(client, 3000, IPAddress.Parse("192.168.50.1"), 30053)); // the node's own address
        Assert.Equal("pod1", Ask(client, 3000, IPAddress.Parse("10.96.0.99"), 30053)); // not the node's

        var deleted = lab.Node.Run(() => ConntrackCleanup.Run([new ConntrackFilter(null, 30053, Backend(1)), new ConntrackFilter(null, 30053, Backend(2))]));
        Assert.Equal(1, deleted);
        using var ct = Loom.Linux.Conntrack.OpenIn(lab.Node.Handle);
        var left = ct.List().Where(f => f.Original.DestinationPort == 30053).Select(f => f.Original.Destination).ToList();
        Assert.Equal([IPAddress.Parse("10.96.0.99")], left);
    }

    /// <summary>
    /// The client's flow is pinned to pod1 (pod2 added later keeps it there: conntrack), then pod1 is removed; returns how
    /// long after that write began pod2 first answered, or TimeSpan.MaxValue if every answer for 1.5 s still came from pod1.
    /// </summary>
    private static async Task<TimeSpan> MoveAsync(UdpServiceLab lab, ServiceProxyMode kind, bool clean)
    {
        var desired = new Dictionary<string, ServicePortState>();
        await using var store = MemoryStore.Create();
        var log = new LogCapture();
        using var ops = new ServiceBackendOperations(
            k => k == kind ? ServiceBackends.Create(k) : new RecordingServiceBackend(k), kind, () => desired,
            new AgentLoops(store, log), clean ? ConntrackCleanup.Run : null);
        void Apply(ServicePortState port)
        {
            desired[Key] = port;
            lab.Node.Run(() => ops.ApplyBatchAsync([new RowChange<string, ServicePortState>(Key, port, false)], default).GetAwaiter().GetResult());
        }

        var deletedBefore = AgentMetrics.ConntrackEntriesDeleted.Value;
        Apply(Udp("10.96.0.53", 53, 1));
        using var client = lab.Client(40153);
        Assert.Equal("pod1", Ask(client, 3000));
        Apply(Udp("10.96.0.53", 53, 1, 2));
        Assert.All(Enumerable.Range(0, 10).Select(_ => Ask(client, 3000)), a => Assert.Equal("pod1", a));

        var sw = Stopwatch.StartNew();
        Apply(Udp("10.96.0.53", 53, 2));
        var stayed = 0;
        while (sw.Elapsed < TimeSpan.FromSeconds(1.5))
        {
            var answer = Ask(client);
            if (answer == "pod2")
            {
                Assert.True(clean, log.Text);
                Assert.Contains("conntrack: 1 stale UDP entry deleted (10.96.0.53:53 via 10.244.1.2:5353)", log.Text, StringComparison.Ordinal);
                Assert.True(AgentMetrics.ConntrackEntriesDeleted.Value >= deletedBefore + 1);
                return sw.Elapsed;
            }

            // A loaded machine may lose an answer's deadline (null); any answer that comes is still pod1's.
            Assert.True(answer is null or "pod1", answer);
            stayed += answer is null ? 0 : 1;
            await Task.Delay(20);
        }

        Assert.True(stayed >= 3, $"only {stayed} answers in 1.5 s");
        return TimeSpan.MaxValue;
    }

    /// <summary>One datagram to the ClusterIP (or <paramref name="to"/>) and the answer (null if none within the timeout).</summary>
    private static string? Ask(Socket client, int timeoutMs = 500, IPAddress? to = null, int port = 53)
    {
        client.SendTo("q"u8, new IPEndPoint(to ?? IPAddress.Parse("10.96.0.53"), port));
        client.ReceiveTimeout = timeoutMs;
        var buf = new byte[16];
        try
        {
            return Encoding.ASCII.GetString(buf, 0, client.Receive(buf));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
        {
            return null;
        }
    }
}
