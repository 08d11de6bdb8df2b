using System.Net;
using System.Net.Sockets;
using Loom.Core.Model;
using Loom.Datapath.Services.Ebpf;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Tests.Ebpf;

/// <summary>
/// Maglev on the tc path: pods 1-3 are backends, pod 4 the client. A client socket bound to a fixed source port gives
/// the same 5-tuple every time; the connection-tracking map is cleared between connections so that every connection is
/// a fresh backend choice (as after CT expiry, or on another node), which Maglev must make the same way, and which must
/// match the table and hash computed in C#.
/// </summary>
public sealed class EbpfMaglevTests : IDisposable
{
    private const int Client = 4;
    private const int Size = Maglev.DefaultTableSize;
    private static readonly IPAddress Vip = IPAddress.Parse("10.96.0.100");
    private readonly EbpfLab _lab = new(bridge: false, 4, 80);
    private readonly EbpfServiceBackend _backend;

    public EbpfMaglevTests()
    {
        _backend = new EbpfServiceBackend(new EbpfServiceOptions
        {
            PinDirectory = _lab.PinDirectory,
            ObjectDirectory = EbpfLab.ObjectDirectory,
            Interfaces = () => _lab.HostIfindexes,
            Algorithm = LbAlgorithm.Maglev,
        });
    }

    public void Dispose()
    {
        _backend.Dispose();
        _lab.Dispose();
    }

    private void Sync(params int[] pods) => _lab.InNode(() => _backend.Sync([_lab.Service("webpod", Vip.ToString(), 80, pods)]));

    /// <summary>One connection from the client bound to <paramref name="sourcePort"/>; closed with RST (no TIME_WAIT).</summary>
    private string ConnectFrom(int sourcePort, bool forget = true, IPAddress? target = null)
    {
        using var s = _lab.Pod(Client).Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        s.LingerState = new LingerOption(true, 0);
        s.Bind(new IPEndPoint(_lab.PodIp(Client), sourcePort));
        using var cts = new CancellationTokenSource(3000);
        s.ConnectAsync(new IPEndPoint(target ?? Vip, 80), cts.Token).AsTask().GetAwaiter().GetResult();
        s.ReceiveTimeout = 3000;
        var buf = new byte[16];
        var n = s.Receive(buf);
        var answer = System.Text.Encoding.ASCII.GetString(buf, 0, n).Trim();
        // Wait for the RST to pass the veth's tc program (it may run after close() returns), then forget the flow.
        var dnat = Stat(LbMaps.Stat.Dnat);
        s.Close();
        if (forget)
        {
            Assert.True(Loom.Testing.Shell.WaitFor(() => Stat(LbMaps.Stat.Dnat) > dnat, TimeSpan.FromSeconds(2)), "the RST was not seen");
            _backend.Loaded.Map<LbCtKey, LbCtEntry>(LbMaps.ConnTrack).Clear();
        }

        return answer;
    }

    private ulong Stat(LbMaps.Stat stat) =>
        _backend.Loaded.PerCpuMap<uint, ulong>(LbMaps.Stats).Lookup((uint)stat).Aggregate(0UL, (x, y) => x + y);

    /// <summary>The pod C# predicts for a flow from <paramref name="sourcePort"/>: table[jhash(5-tuple) % M] over the pods' "ip:80".</summary>
    private string Predict(int sourcePort, int[] pods)
    {
        var table = Maglev.Table(pods.Select(i => Maglev.Name(_lab.PodIp(i), 80)).ToArray(), Size);
        var hash = Maglev.FlowHash(LbMaps.ToNetwork(_lab.PodIp(Client)), LbMaps.ToNetwork(Vip), LbMaps.PortToNetwork(sourcePort), LbMaps.PortToNetwork(80), (byte)ProtocolType.Tcp);
        return $"pod{pods[table[hash % Size]]}";
    }

    [Fact]
    public void A_direct_connection_reusing_a_service_flows_tuple_is_not_reverse_translated()
    {
        // Through the ClusterIP from port 43000, leaving its conntrack entries behind (as after a quick close);
        // then straight to the same pod from the same port: the reply must come from the pod, not the ClusterIP.
        Sync(1, 2, 3);
        var pod = ConnectFrom(43000, forget: false);
        Thread.Sleep(200);
        var podIp = _lab.PodIp(int.Parse(pod.AsSpan(3), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(pod, ConnectFrom(43000, forget: false, target: podIp));
    }

    [Fact]
    public void The_same_five_tuple_always_reaches_the_same_backend()
    {
        Sync(1, 2, 3);
        var seen = new HashSet<string>();
        for (var port = 41000; port < 41012; port++)
        {
            var answers = Enumerable.Range(0, 3).Select(_ => ConnectFrom(port)).ToArray();
            Assert.All(answers, a => Assert.Equal(Predict(port, [1, 2, 3]), a));
            seen.Add(answers[0]);
        }

        Assert.True(seen.Count >= 2, $"12 source ports all went to {string.Join(",", seen)}");
        Assert.Equal(36UL, Stat(LbMaps.Stat.Select)); // a fresh choice every time
    }

    [Fact]
    public void Removing_one_of_three_backends_leaves_the_flows_of_the_others_where_they_were()
    {
        Sync(1, 2, 3);
        var ports = Enumerable.Range(42000, 30).ToArray();
        var before = ports.ToDictionary(p => p, p => ConnectFrom(p));
        Assert.Equal(3, before.Values.Distinct().Count());
        Sync(1, 3);
        var after = ports.ToDictionary(p => p, p => ConnectFrom(p));
        foreach (var p in ports)
        {
            Assert.Equal(Predict(p, [1, 3]), after[p]);
            Assert.NotEqual("pod2", after[p]);
            if (before[p] != "pod2")
            {
                Assert.Equal(before[p], after[p]);
            }
        }
    }

    [Fact]
    public void A_sync_with_the_same_backends_does_not_rewrite_the_table()
    {
        Sync(1, 2, 3);
        var chunk = new LbMaglevKey(_lab.InNode(() => _backend.Loaded.Map<LbServiceKey, LbService>(LbMaps.Services)
            .Lookup(new LbServiceKey(Vip, 80, ProtocolType.Tcp, 0))).RevNatIndex, 0);
        var map = _backend.Loaded.Map<LbMaglevKey, LbMaglevChunk>(LbMaps.Maglev);
        // Scribble on the table: a sync that rewrote it would repair this.
        var value = map.Lookup(chunk);
        var marker = value[0];
        value[0] = value[1] == marker ? value[2] : value[1];
        map.Update(chunk, value);
        Sync(3, 2, 1);
        Assert.NotEqual(marker, map.Lookup(chunk)[0]);
        Sync(1, 2);
        Sync(1, 2, 3);
        Assert.Equal(marker, map.Lookup(chunk)[0]);
    }

    [Fact]
    public void A_bad_table_size_is_refused_up_front()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new EbpfServiceBackend(new EbpfServiceOptions { Algorithm = LbAlgorithm.Maglev, MaglevTableSize = 16380 }));
        Assert.Contains("prime", e.Message, StringComparison.Ordinal);
        using var random = new EbpfServiceBackend(new EbpfServiceOptions { MaglevTableSize = 16380 }); // unused without Maglev
    }
}
