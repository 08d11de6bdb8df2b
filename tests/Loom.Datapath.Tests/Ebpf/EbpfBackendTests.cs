using System.Diagnostics;
using System.Globalization;
using System.Net;
using Loom.Core.Model;
using Loom.Datapath.Services;
using Loom.Datapath.Services.Ebpf;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Tests.Ebpf;

/// <summary>
/// The behaviour demanded of every service backend (as BackendKernelTests for iptables / nftables), for the eBPF
/// backend through each of its paths: tc per-packet NAT on the client pod's host-side veth (routed and bridge mode),
/// and the cgroup socket LB for a client process in the lab's own cgroup. Pods 1 and 2 are backends, pod 3 the client.
/// </summary>
public abstract class EbpfBackendTests : IDisposable
{
    private protected const int Client = 3;
    private static readonly IPAddress WebIp = IPAddress.Parse("10.96.0.100");
    private readonly List<EbpfServiceBackend> _backends = [];

    private protected EbpfBackendTests(bool bridge) => Lab = new EbpfLab(bridge, 3, 80, 53);

    private protected EbpfLab Lab { get; }

    /// <summary>What a connect to a service without endpoints ends in on this path.</summary>
    private protected abstract string ExpectedRefusal { get; }

    private protected abstract bool UseCgroup { get; }

    /// <summary>Backend selection the suite runs with (the Maglev subclasses run it all again with Maglev).</summary>
    private protected virtual LbAlgorithm Algorithm => LbAlgorithm.Random;

    public void Dispose()
    {
        foreach (var b in _backends)
        {
            b.Dispose();
        }

        Lab.Dispose();
        GC.SuppressFinalize(this);
    }

    private protected EbpfServiceBackend NewBackend()
    {
        var b = new EbpfServiceBackend(new EbpfServiceOptions
        {
            PinDirectory = Lab.PinDirectory,
            ObjectDirectory = EbpfLab.ObjectDirectory,
            CgroupPath = UseCgroup ? Lab.Cgroup : null,
            Interfaces = () => Lab.HostIfindexes,
            Algorithm = Algorithm,
        });
        _backends.Add(b);
        return b;
    }

    private protected void Sync(IServiceBackend b, params ServicePortState[] desired) => Lab.InNode(() => b.Sync(desired));

    private protected abstract IReadOnlyList<string> TcpMany(IPAddress ip, int port, int n);

    private protected abstract string? Udp(IPAddress ip, int port);

    private protected abstract (string Outcome, TimeSpan Elapsed) TcpOutcome(IPAddress ip, int port, int timeoutMs = 3000);

    [Fact]
    public void Connections_to_the_cluster_ip_reach_both_pods()
    {
        var b = NewBackend();
        Sync(b, Lab.Service("webpod", "10.96.0.100", 80, [1, 2]));
        var seen = TcpMany(WebIp, 80, 20).ToHashSet();
        Assert.Equal(["pod1", "pod2"], seen.Order());
    }

    [Fact]
    public void A_removed_endpoint_gets_no_more_connections_at_once()
    {
        var b = NewBackend();
        Sync(b, Lab.Service("webpod", "10.96.0.100", 80, [1, 2]));
        Assert.Equal(["pod1", "pod2"], TcpMany(WebIp, 80, 20).ToHashSet().Order());
        var sw = Stopwatch.StartNew();
        Sync(b, Lab.Service("webpod", "10.96.0.100", 80, [2]));
        Assert.Equal("pod2", TcpMany(WebIp, 80, 1).Single());
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1), $"took {sw.Elapsed}");
        Assert.All(TcpMany(WebIp, 80, 20), a => Assert.Equal("pod2", a));
    }

    [Fact]
    public void A_service_without_endpoints_fails_at_once()
    {
        var b = NewBackend();
        Sync(b, Lab.Service("webpod", "10.96.0.100", 80, [1]), Lab.Service("empty", "10.96.0.50", 80, []));
        var (outcome, elapsed) = TcpOutcome(IPAddress.Parse("10.96.0.50"), 80);
        Assert.Equal(ExpectedRefusal, outcome);
        Assert.True(elapsed < TimeSpan.FromSeconds(1), $"took {elapsed}");
        Assert.Equal("pod1", TcpMany(WebIp, 80, 1).Single());
    }

    [Fact]
    public void Udp_services_work()
    {
        var b = NewBackend();
        Sync(b, Lab.Service("dns", "10.96.0.10", 53, [2], Protocol.Udp));
        Assert.Equal("pod2", Udp(IPAddress.Parse("10.96.0.10"), 53));
    }

    [Fact]
    public void Client_ip_affinity_sticks_to_one_pod()
    {
        var b = NewBackend();
        Sync(b, Lab.Service("webpod", "10.96.0.100", 80, [1, 2], affinity: SessionAffinity.ClientIP));
        Assert.Single(TcpMany(WebIp, 80, 20).Distinct());
    }

    [Fact]
    public void Client_ip_affinity_sticks_within_its_timeout_and_lapses_after_it()
    {
        var b = NewBackend();
        Sync(b, Lab.Service("webpod", "10.96.0.100", 80, [1, 2], affinity: SessionAffinity.ClientIP) with { AffinityTimeoutSeconds = 1 });
        var seen = new HashSet<string>();
        for (var round = 0; round < 8 && seen.Count < 2; round++)
        {
            // Connections in quick succession (each refreshes the entry) stay on one backend ...
            var run = TcpMany(WebIp, 80, 4).Distinct().ToList();
            Assert.Single(run);
            seen.Add(run[0]);
            Thread.Sleep(2100); // ... and past the 1 s timeout (second granularity) the next one chooses afresh
        }

        // Both backends turn up across expiries (8 rounds: 1 in 128 to fail by chance; without expiry never).
        Assert.Equal(["pod1", "pod2"], seen.Order());
    }

    [Fact]
    public void Affinity_to_a_removed_endpoint_is_forgotten()
    {
        var b = NewBackend();
        Sync(b, Lab.Service("webpod", "10.96.0.100", 80, [1, 2], affinity: SessionAffinity.ClientIP));
        var first = TcpMany(WebIp, 80, 1).Single();
        var survivor = first == "pod1" ? 2 : 1;
        Sync(b, Lab.Service("webpod", "10.96.0.100", 80, [survivor], affinity: SessionAffinity.ClientIP));
        Assert.All(TcpMany(WebIp, 80, 5), a => Assert.Equal($"pod{survivor}", a));
    }

    [Fact]
    public void Repeated_syncs_change_nothing()
    {
        var b = NewBackend();
        var desired = new[] { Lab.Service("webpod", "10.96.0.100", 80, [1, 2]), Lab.Service("empty", "10.96.0.50", 80, []) };
        Sync(b, desired);
        var first = b.Dump();
        Sync(b, desired);
        Assert.Equal(first, b.Dump());
    }

    [Fact]
    public void A_restarted_backend_adopts_the_maps_and_drops_what_is_gone()
    {
        var before = NewBackend();
        Sync(before, Lab.Service("webpod", "10.96.0.100", 80, [1, 2]), Lab.Service("old", "10.96.0.77", 80, [1]));
        var ids = before.Dump();
        before.Dispose();

        var after = NewBackend();
        Sync(after, Lab.Service("webpod", "10.96.0.100", 80, [1, 2]));
        Assert.Contains(LbMaps.Services, after.Loaded.ReusedMaps);
        Assert.Contains(LbMaps.ConnTrack, after.Loaded.ReusedMaps);
        var dump = after.Dump();
        Assert.DoesNotContain("10.96.0.77", dump, StringComparison.Ordinal);
        // webpod keeps its rev-nat index and backend ids.
        foreach (var line in dump.Split('\n').Where(l => l.Contains("10.96.0.100", StringComparison.Ordinal)))
        {
            Assert.Contains(line, ids, StringComparison.Ordinal);
        }

        Assert.Equal(["pod1", "pod2"], TcpMany(WebIp, 80, 20).ToHashSet().Order());
        if (UseCgroup)
        {
            // The new run's programs replaced the old ones on the cgroup hooks (not added next to them).
            Assert.Equal([after.Loaded.Program(LbMaps.Connect4).Id], BpfProgram.QueryCgroup(Lab.Cgroup, BpfCgroupAttachType.Inet4Connect));
            Assert.Equal([after.Loaded.Program(LbMaps.Sendmsg4).Id], BpfProgram.QueryCgroup(Lab.Cgroup, BpfCgroupAttachType.Udp4Sendmsg));
        }
    }

    [Fact]
    public void Flush_leaves_nothing_of_ours()
    {
        var b = NewBackend();
        Sync(b, Lab.Service("webpod", "10.96.0.100", 80, [1, 2]), Lab.Service("empty", "10.96.0.50", 80, []));
        Lab.InNode(b.Flush);
        Assert.False(Directory.Exists(Lab.PinDirectory));
        Lab.InNode(() =>
        {
            foreach (var i in Lab.HostIfindexes)
            {
                Assert.Null(BpfTc.Query(i, TcDirection.Ingress, b.Options.TcPriority, b.Options.TcHandle));
                Assert.Null(BpfTc.Query(i, TcDirection.Egress, b.Options.TcPriority, b.Options.TcHandle));
            }
        });
        if (UseCgroup)
        {
            Assert.Empty(BpfProgram.QueryCgroup(Lab.Cgroup, BpfCgroupAttachType.Inet4Connect));
            Assert.Empty(BpfProgram.QueryCgroup(Lab.Cgroup, BpfCgroupAttachType.Udp4Sendmsg));
            Assert.Empty(BpfProgram.QueryCgroup(Lab.Cgroup, BpfCgroupAttachType.Udp4Recvmsg));
        }

        Lab.InNode(b.Flush); // idempotent
        Assert.False(Directory.Exists(Lab.PinDirectory));
        Assert.NotEqual("pod1", TcpOutcome(WebIp, 80, 500).Outcome);
        Assert.NotEqual("pod2", TcpOutcome(WebIp, 80, 500).Outcome);
    }

    [Fact]
    public void Explain_shows_the_map_entries()
    {
        var b = NewBackend();
        var web = Lab.Service("webpod", "10.96.0.100", 80, [1, 2]);
        var empty = Lab.Service("empty", "10.96.0.50", 80, []);
        Sync(b, web, empty);
        var text = Lab.InNode(() => b.Explain(web));
        Assert.Contains($"{Lab.PodIp(1)}:80", text, StringComparison.Ordinal);
        Assert.Contains($"{Lab.PodIp(2)}:80", text, StringComparison.Ordinal);
        Assert.Contains("10.96.0.100", text, StringComparison.Ordinal);
        Assert.Contains("slot 1: backend", text, StringComparison.Ordinal);
        Assert.Contains("rev-nat", text, StringComparison.Ordinal);
        Assert.DoesNotContain("10.96.0.50", text, StringComparison.Ordinal);
        var emptyText = Lab.InNode(() => b.Explain(empty));
        Assert.Contains("10.96.0.50", emptyText, StringComparison.Ordinal);
        Assert.Contains("count 0", emptyText, StringComparison.Ordinal);
    }

    [Fact]
    public void The_factory_builds_the_ebpf_backend()
    {
        var b = ServiceBackends.Create(ServiceProxyMode.Ebpf, null, new EbpfServiceOptions { PinDirectory = Lab.PinDirectory });
        Assert.Equal("ebpf", b.Name);
        Assert.IsType<EbpfServiceBackend>(b);
        Assert.Equal("ebpf", ServiceBackends.Create(ServiceProxyMode.Ebpf).Name);
    }
}

/// <summary>tc path: the client pod's packets are DNAT-ed on its host-side veth's ingress, replies reverse-NAT-ed on its egress.</summary>
public abstract class EbpfTcTests : EbpfBackendTests
{
    private protected EbpfTcTests(bool bridge)
        : base(bridge)
    {
    }

    private protected override string ExpectedRefusal => "refused";

    private protected override bool UseCgroup => false;

    private protected override IReadOnlyList<string> TcpMany(IPAddress ip, int port, int n) =>
        Enumerable.Range(0, n).Select(_ => Lab.Tcp(Client, ip, port)).ToList();

    private protected override string? Udp(IPAddress ip, int port) => Lab.Udp(Client, ip, port);

    private protected override (string Outcome, TimeSpan Elapsed) TcpOutcome(IPAddress ip, int port, int timeoutMs = 3000) =>
        Lab.TcpOutcome(Client, ip, port, timeoutMs);

    [Fact]
    public void Every_packet_of_a_flow_is_translated_on_the_veth_and_the_flow_is_tracked()
    {
        var b = NewBackend();
        Sync(b, Lab.Service("webpod", "10.96.0.100", 80, [1, 2]), Lab.Service("empty", "10.96.0.50", 80, []));
        Assert.Equal(10, TcpMany(IPAddress.Parse("10.96.0.100"), 80, 10).Count);
        var stats = b.Loaded.PerCpuMap<uint, ulong>(LbMaps.Stats);
        ulong Sum(LbMaps.Stat st) => stats.Lookup((uint)st).Aggregate(0UL, (x, y) => x + y);
        // The client closes after the greeting: the server's FIN and the last ACK may still be on their way (busy machine).
        Loom.Testing.Shell.WaitFor(() => Sum(LbMaps.Stat.ReverseNat) >= 30 && Sum(LbMaps.Stat.Dnat) >= 30, TimeSpan.FromSeconds(2));
        Assert.Equal(10UL, Sum(LbMaps.Stat.Select)); // one backend choice per connection ...
        Assert.True(Sum(LbMaps.Stat.Dnat) >= 30, $"dnat {Sum(LbMaps.Stat.Dnat)}"); // ... but every packet DNAT-ed (SYN, ACK, FIN, ...)
        Assert.True(Sum(LbMaps.Stat.ReverseNat) >= 30, $"rev-nat {Sum(LbMaps.Stat.ReverseNat)}");
        var ct = b.Loaded.Map<LbCtKey, LbCtEntry>(LbMaps.ConnTrack).Keys();
        Assert.Equal(10, ct.Count(k => k.Direction == 0));
        Assert.Equal(10, ct.Count(k => k.Direction == 1));
        Assert.Equal("refused", TcpOutcome(IPAddress.Parse("10.96.0.50"), 80).Outcome);
        Assert.Equal(1UL, Sum(LbMaps.Stat.NoBackend));
    }

    [Fact]
    public void A_pod_reaches_itself_through_its_own_service_hairpin()
    {
        var b = NewBackend();
        Sync(b, Lab.Service("self", "10.96.0.60", 80, [1]), Lab.Service("selfudp", "10.96.0.60", 53, [1], Protocol.Udp));
        var (s, greeting) = Lab.OpenTcp(1, IPAddress.Parse("10.96.0.60"), 80);
        using (s)
        {
            Assert.Equal("pod1", greeting);
            Assert.Equal("looped", EbpfLab.Echo(s, "looped")); // the flow carries on, both ways
            Assert.Equal(new IPEndPoint(IPAddress.Parse("10.96.0.60"), 80), s.RemoteEndPoint);
        }

        Assert.Equal("pod1", Lab.Udp(1, IPAddress.Parse("10.96.0.60"), 53));
        // The hairpinned flow's source as the pod saw it: Cilium's service loopback address.
        var ct = b.Loaded.Map<LbCtKey, LbCtEntry>(LbMaps.ConnTrack).Keys();
        Assert.Contains(ct, k => k.Direction == 1 && k.SourceAddress == k.DestinationAddress && k.SourceAddress == LbMaps.ToNetwork(Lab.PodIp(1)));
    }

    [Fact]
    public void An_open_connection_to_a_surviving_backend_survives_a_sync_that_removes_another()
    {
        var b = NewBackend();
        Sync(b, Lab.Service("webpod", "10.96.0.100", 80, [1, 2]));
        var (s, greeting) = Lab.OpenTcp(Client, IPAddress.Parse("10.96.0.100"), 80);
        using (s)
        {
            Assert.Equal("hello", EbpfLab.Echo(s, "hello"));
            var survivor = greeting == "pod1" ? 1 : 2;
            Sync(b, Lab.Service("webpod", "10.96.0.100", 80, [survivor]));
            Assert.Equal("still here", EbpfLab.Echo(s, "still here"));
            // The peer the application sees is still the ClusterIP.
            Assert.Equal(new IPEndPoint(IPAddress.Parse("10.96.0.100"), 80), s.RemoteEndPoint);
        }
    }

    [Fact]
    public void An_open_connection_survives_a_backend_restart_over_the_same_pins()
    {
        var before = NewBackend();
        Sync(before, Lab.Service("webpod", "10.96.0.100", 80, [1, 2]));
        var (s, _) = Lab.OpenTcp(Client, IPAddress.Parse("10.96.0.100"), 80);
        using (s)
        {
            var oldProgram = Lab.InNode(() => BpfTc.Query(Lab.HostIfindex(Client), TcDirection.Ingress, before.Options.TcPriority, before.Options.TcHandle));
            before.Dispose();
            Assert.Equal("across", EbpfLab.Echo(s, "across"));
            var after = NewBackend();
            Sync(after, Lab.Service("webpod", "10.96.0.100", 80, [1, 2]));
            var newProgram = Lab.InNode(() => BpfTc.Query(Lab.HostIfindex(Client), TcDirection.Ingress, after.Options.TcPriority, after.Options.TcHandle));
            Assert.NotEqual(oldProgram, newProgram); // the new run's program replaced the old one ...
            Assert.Equal("restart", EbpfLab.Echo(s, "restart")); // ... and found the flow in the pinned CT map
        }
    }

    [Fact]
    public void Veths_are_attached_on_a_full_pass_or_when_asked_and_a_full_resync_repairs_drift()
    {
        var web = IPAddress.Parse("10.96.0.100");
        var veths = new List<int>();
        var b = new EbpfServiceBackend(new EbpfServiceOptions { PinDirectory = Lab.PinDirectory, ObjectDirectory = EbpfLab.ObjectDirectory, Interfaces = () => veths });
        using (b)
        {
            ServicePortState[] svc = [Lab.Service("webpod", "10.96.0.100", 80, [1])];
            Lab.InNode(() => b.Sync(svc));
            veths.Add(Lab.HostIfindex(Client));
            Lab.InNode(() => b.Sync(svc));
            Assert.Empty(Lab.InNode(b.AttachedInterfaces)); // an incremental sync does not look for veths ...
            b.InterfacesChanged();
            Lab.InNode(() => b.Sync(svc));
            Assert.Equal([Lab.HostIfindex(Client)], Lab.InNode(b.AttachedInterfaces)); // ... unless told a pod came
            Assert.Equal("pod1", Lab.Tcp(Client, web, 80));

            // Drift behind the backend's back: the service's slot and the veth's ingress program removed.
            var want = b.Dump();
            Assert.True(b.Loaded.Map<LbServiceKey, LbService>(LbMaps.Services).Delete(new LbServiceKey(web, 80, System.Net.Sockets.ProtocolType.Tcp, 1)));
            Lab.InNode(() => BpfTc.Detach(Lab.HostIfindex(Client), TcDirection.Ingress, b.Options.TcPriority, b.Options.TcHandle));
            Lab.InNode(() => b.Sync(svc));
            Assert.NotEqual(want, b.Dump()); // trusted memory: not noticed
            Assert.False(b.FullResyncPending);

            b.RequestFullResync();
            Lab.InNode(() => b.Sync(svc));
            Assert.Equal(want, b.Dump());
            Assert.Equal("pod1", Lab.Tcp(Client, web, 80));
            Lab.InNode(b.Flush);
        }
    }

    [Fact]
    public void Attach_and_detach_per_veth()
    {
        var b = new EbpfServiceBackend(new EbpfServiceOptions { PinDirectory = Lab.PinDirectory, ObjectDirectory = EbpfLab.ObjectDirectory });
        using (b)
        {
            Lab.InNode(() =>
            {
                b.Sync([Lab.Service("webpod", "10.96.0.100", 80, [1])]);
                Assert.Empty(b.AttachedInterfaces());
                b.Attach(Lab.HostIfindex(Client));
                b.Attach(Lab.HostIfindex(Client)); // idempotent
                Assert.Equal([Lab.HostIfindex(Client)], b.AttachedInterfaces());
            });
            Assert.Equal("pod1", Lab.Tcp(Client, IPAddress.Parse("10.96.0.100"), 80));
            Lab.InNode(() => b.Detach(Lab.HostIfindex(Client)));
            Assert.Empty(Lab.InNode(b.AttachedInterfaces));
            Assert.NotEqual("pod1", Lab.TcpOutcome(Client, IPAddress.Parse("10.96.0.100"), 80, 500).Outcome);
            Lab.InNode(b.Flush);
        }
    }

    [Fact]
    public void Udp_flows_keep_their_backend_and_replies_come_from_the_cluster_ip()
    {
        var b = NewBackend();
        Sync(b, Lab.Service("dns", "10.96.0.10", 53, [1, 2], Protocol.Udp));
        using var s = Lab.Pod(Client).Run(() => new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp));
        s.ReceiveTimeout = 2000;
        var vip = new IPEndPoint(IPAddress.Parse("10.96.0.10"), 53);
        var answers = new HashSet<string>();
        var buf = new byte[64];
        for (var i = 0; i < 10; i++)
        {
            s.SendTo("ping"u8, vip);
            System.Net.EndPoint from = new IPEndPoint(IPAddress.Any, 0);
            var n = s.ReceiveFrom(buf, ref from);
            Assert.Equal(vip, from);
            answers.Add(System.Text.Encoding.ASCII.GetString(buf, 0, n).Trim());
        }

        Assert.Single(answers); // one socket, one 5-tuple: one backend for the whole flow
    }
}

/// <summary>tc path, routed veths (no bridge): the node routes the DNAT-ed packet to the backend's veth.</summary>
public class EbpfTcRoutedTests : EbpfTcTests
{
    public EbpfTcRoutedTests()
        : base(bridge: false)
    {
    }
}

/// <summary>
/// tc path in bridge mode (cni0): the DNAT-ed frame still carries cni0's MAC, so the bridge hands it to the node, which
/// routes it back out of cni0 to the backend; the backend's reply is bridged straight to the client's veth, whose
/// egress program reverse-NATs it.
/// </summary>
public class EbpfTcBridgeTests : EbpfTcTests
{
    public EbpfTcBridgeTests()
        : base(bridge: true)
    {
    }
}

/// <summary>Socket LB path: a client process in the lab's cgroup (tc programs on the veths too, as the agent runs both).</summary>
public class EbpfSocketLbTests : EbpfBackendTests
{
    public EbpfSocketLbTests()
        : base(bridge: false)
    {
    }

    /// <summary>connect4 returns 0 for a frontend without backends: connect() fails with EPERM, no packet is sent.</summary>
    private protected override string ExpectedRefusal => "eperm";

    private protected override bool UseCgroup => true;

    private protected override IReadOnlyList<string> TcpMany(IPAddress ip, int port, int n)
    {
        var r = Lab.BashInCgroup(Client, string.Create(CultureInfo.InvariantCulture,
            $"for i in $(seq {n}); do exec 3<>/dev/tcp/{ip}/{port} || exit 1; head -n1 <&3; exec 3<&-; done"));
        Assert.True(r.Ok, r.ToString());
        return r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    private protected override string? Udp(IPAddress ip, int port)
    {
        var r = Lab.BashInCgroup(Client, $"exec 3<>/dev/udp/{ip}/{port} && echo ping >&3 && timeout 2 head -n1 <&3");
        return r.Ok ? r.Stdout.Trim() : null;
    }

    private protected override (string Outcome, TimeSpan Elapsed) TcpOutcome(IPAddress ip, int port, int timeoutMs = 3000)
    {
        var sw = Stopwatch.StartNew();
        var seconds = Math.Max(1, timeoutMs / 1000.0).ToString(CultureInfo.InvariantCulture);
        var r = Lab.BashInCgroup(Client, $"timeout {seconds} bash -c 'exec 3<>/dev/tcp/{ip}/{port} && head -n1 <&3'");
        var elapsed = sw.Elapsed;
        if (r.Ok)
        {
            return (r.Stdout.Trim(), elapsed);
        }

        var outcome = r.Stderr.Contains("Operation not permitted", StringComparison.Ordinal) ? "eperm"
            : r.Stderr.Contains("Connection refused", StringComparison.Ordinal) ? "refused"
            : r.ExitCode == 124 ? "timeout"
            : r.Stderr.Trim();
        return (outcome, elapsed);
    }

    [Fact]
    public void Socket_lb_translates_in_the_socket_layer_only()
    {
        var b = NewBackend();
        Sync(b, Lab.Service("webpod", "10.96.0.100", 80, [1, 2]));
        Assert.Equal(["pod1", "pod2"], TcpMany(IPAddress.Parse("10.96.0.100"), 80, 20).ToHashSet().Order());
        var stats = b.Loaded.PerCpuMap<uint, ulong>(LbMaps.Stats);
        ulong Sum(LbMaps.Stat s) => stats.Lookup((uint)s).Aggregate(0UL, (x, y) => x + y);
        Assert.Equal(20UL, Sum(LbMaps.Stat.Socket));
        Assert.Equal(0UL, Sum(LbMaps.Stat.Dnat)); // no packet ever carried the ClusterIP
    }

    [Fact]
    public void Unconnected_udp_replies_appear_to_come_from_the_cluster_ip()
    {
        var b = NewBackend();
        Sync(b, Lab.Service("dns", "10.96.0.10", 53, [2], Protocol.Udp));
        var python = Loom.Testing.Shell.Require("python3");
        var r = Lab.RunInCgroup(Client, [python, "-c",
            "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(3);" +
            "s.sendto(b'ping',('10.96.0.10',53));d,a=s.recvfrom(64);print(d.decode().strip(),a[0],a[1])"]);
        Assert.True(r.Ok, r.ToString());
        Assert.Equal("pod2 10.96.0.10 53", r.Stdout.Trim());
    }
}

/// <summary>Every BPF object of bpf/ loads (the verifier accepts every program).</summary>
public class EbpfObjectTests
{
    [Theory]
    [InlineData("lb4.o")]
    [InlineData("test_maps.o")]
    public void The_object_loads(string file)
    {
        using var obj = BpfObject.Load(EbpfLab.ObjectPath(file));
        Assert.NotEmpty(obj.ProgramNames);
        foreach (var p in obj.ProgramNames)
        {
            Assert.True(obj.Program(p).Id > 0);
        }
    }

    [Fact]
    public void Lb4_has_the_programs_and_maps_the_backend_uses()
    {
        using var obj = BpfObject.Load(EbpfLab.ObjectPath(LbMaps.ObjectFile));
        Assert.Equal(
            [LbMaps.Connect4, LbMaps.FromNet, LbMaps.FromPod, LbMaps.Recvmsg4, LbMaps.Sendmsg4, LbMaps.ToNet, LbMaps.ToPod],
            obj.ProgramNames.Order(StringComparer.Ordinal));
        // The typed views check key and value sizes against the C structs.
        _ = obj.Map<LbServiceKey, LbService>(LbMaps.Services);
        _ = obj.Map<uint, LbBackend>(LbMaps.Backends);
        _ = obj.Map<ushort, LbReverseNat>(LbMaps.ReverseNat);
        _ = obj.Map<LbCtKey, LbCtEntry>(LbMaps.ConnTrack);
        _ = obj.Map<LbAffinityKey, LbAffinityValue>(LbMaps.Affinity);
        _ = obj.Map<LbMaglevKey, LbMaglevChunk>(LbMaps.Maglev);
        _ = obj.Map<LbCtKey, LbSnatEntry>(LbMaps.Snat);
        _ = obj.Map<uint, LbConfig>(LbMaps.Config);
        Assert.Equal(BpfMapType.LruHash, obj.Map(LbMaps.ConnTrack).Type);
    }
}

/// <summary>The tc suite (routed veths) with Maglev backend selection.</summary>
public class EbpfTcRoutedMaglevTests : EbpfTcRoutedTests
{
    private protected override LbAlgorithm Algorithm => LbAlgorithm.Maglev;

    [Fact]
    public void Maglev_services_carry_the_flag_the_table_size_and_a_table()
    {
        var b = NewBackend();
        var web = Lab.Service("webpod", "10.96.0.100", 80, [1, 2]);
        Sync(b, web);
        var text = Lab.InNode(() => b.Explain(web));
        Assert.Contains("maglev: table of 16381 slots", text, StringComparison.Ordinal);
        Assert.Contains($"{Lab.PodIp(1)}:80/tcp: 819", text, StringComparison.Ordinal); // 16381 / 2 = 8190 or 8191
        Assert.Contains($"{Lab.PodIp(2)}:80/tcp: 819", text, StringComparison.Ordinal);
        Assert.Contains("maglev chunks: 64", b.Dump(), StringComparison.Ordinal);
        Sync(b, Lab.Service("webpod", "10.96.0.100", 80, []));
        Assert.Contains("maglev chunks: 0", b.Dump(), StringComparison.Ordinal);
        Sync(b, web);
        Assert.Contains("maglev chunks: 64", b.Dump(), StringComparison.Ordinal);
        Sync(b);
        Assert.Contains("maglev chunks: 0", b.Dump(), StringComparison.Ordinal);
    }
}

/// <summary>The tc suite in bridge mode with Maglev backend selection.</summary>
public class EbpfTcBridgeMaglevTests : EbpfTcBridgeTests
{
    private protected override LbAlgorithm Algorithm => LbAlgorithm.Maglev;
}

/// <summary>The socket-LB suite with Maglev backend selection.</summary>
public class EbpfSocketLbMaglevTests : EbpfSocketLbTests
{
    private protected override LbAlgorithm Algorithm => LbAlgorithm.Maglev;

    [Fact]
    public void A_client_bound_to_a_fixed_port_always_gets_the_same_backend()
    {
        var b = NewBackend();
        Sync(b, Lab.Service("webpod", "10.96.0.100", 80, [1, 2]));
        var python = Loom.Testing.Shell.Require("python3");
        var seen = new HashSet<string>();
        foreach (var port in Enumerable.Range(43001, 12))
        {
            // Each connection is a new socket bound to the same port, closed with RST (no TIME_WAIT).
            var r = Lab.RunInCgroup(Client, [python, "-c",
                "import socket,struct\nfor _ in range(3):\n" +
                " s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n" +
                " s.setsockopt(socket.SOL_SOCKET,socket.SO_LINGER,struct.pack('ii',1,0))\n" +
                $" s.bind(('',{port}));s.settimeout(3);s.connect(('10.96.0.100',80))\n" +
                " print(s.makefile().readline().strip());s.close()"]);
            Assert.True(r.Ok, r.ToString());
            var answers = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(3, answers.Length);
            Assert.Single(answers.Distinct());
            seen.Add(answers[0]);
        }

        Assert.Equal(["pod1", "pod2"], seen.Order()); // different ports, different flows: both backends (the netns cookie varies per run: 2^-11 to miss)
    }
}
