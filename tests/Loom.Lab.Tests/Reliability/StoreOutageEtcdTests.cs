using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Loom.Core.AgentApi;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Linux;
using Xunit.Abstractions;

namespace Loom.Lab.Tests.Reliability;

/// <summary>
/// One etcd lab: a pod "web" on k8s-w1 echoing on 8080 behind a Service written into etcd through the lab's store,
/// and a client pod on k8s-w2.
/// </summary>
public sealed class StoreOutageEtcdLab : IAsyncLifetime, IDisposable
{
    public const int Port = 8080;
    private readonly CancellationTokenSource _stop = new();
    private LabOptions? _options;
    private LabState? _state;
    private Socket? _listener;
    private Task? _echo;

    public LabState State => _state ?? throw new InvalidOperationException("the lab is not up");

    public LabPod Client { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        _options = TestLab.Options(agents: true, store: LabStoreKind.Etcd);
        try
        {
            _state = await Lab.UpAsync(_options, TextWriter.Null);
            var web = Lab.AddPod(_state, "web", "k8s-w1", labels: new Dictionary<string, string> { ["app"] = "outage-web" });
            Client = Lab.AddPod(_state, "client", "k8s-w2");
            using (var ns = NetNs.Open(web.Netns))
            {
                _listener = NetNs.Run(ns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            }

            _listener.Bind(new IPEndPoint(IPAddress.Any, Port));
            _listener.Listen(512);
            _echo = TestLab.EchoAsync(_listener, _stop.Token);
        }
        catch
        {
            await Lab.DownAsync(_options.LabDir, _options.Prefix);
            _options = null;
            throw;
        }
    }

    /// <summary>Writes a Service selecting the web pod into etcd, as the lab's apply does.</summary>
    public async Task PutServiceAsync(string name, IPAddress clusterIp)
    {
        var svc = new Service
        {
            Namespace = "default", Name = name, ClusterIp = clusterIp,
            Ports = [new ServicePort(null, Protocol.Tcp, 80, Port)],
            Selector = new Dictionary<string, string> { ["app"] = "outage-web" },
        };
        var store = await LabStore.OpenStoreAsync(State);
        await using (store.ConfigureAwait(false))
        {
            await store.PutAsync(Kinds.Service, svc);
        }
    }

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener?.Dispose();
        if (_echo is not null)
        {
            await Task.WhenAny(_echo, Task.Delay(2000));
        }

        if (_options is not null)
        {
            await Lab.DownAsync(_options.LabDir, _options.Prefix);
        }
    }

    public void Dispose() => _stop.Dispose();
}

/// <summary>
/// etcd frozen for 30 s (SIGSTOP, as a hung server): a probe through a Service from a pod on another node loses
/// nothing, every agent says the store is unreachable, and after SIGCONT a Service written then is applied.
/// </summary>
[Collection(SequentialLab.Name)]
public sealed class StoreOutageEtcdTests(StoreOutageEtcdLab lab, ITestOutputHelper output) : IClassFixture<StoreOutageEtcdLab>
{
    private static readonly TimeSpan Outage = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_frozen_etcd_costs_no_request_and_a_change_made_after_it_is_applied()
    {
        var state = lab.State;
        var etcd = state.EtcdPid ?? throw new InvalidOperationException("the lab has no etcd pid");
        var before = IPAddress.Parse("10.96.0.210");
        await lab.PutServiceAsync("outage-web", before);
        await AnswersAsync(before, TimeSpan.FromSeconds(30));

        await using var probe = new StoreOutageProbe(lab.Client.Netns, s => EchoAsync(s, new IPEndPoint(before, 80)));
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Empty(probe.Failures);

        var unreachableSeen = new HashSet<string>(StringComparer.Ordinal);
        var frozenAt = probe.Elapsed;
        var held = Stopwatch.StartNew();
        Signal("STOP", etcd);
        try
        {
            while (held.Elapsed < Outage)
            {
                foreach (var n in state.Nodes)
                {
                    var status = await StatusAsync(state, n.Name);
                    if (!status.StoreReachable)
                    {
                        Assert.False(status.Healthy);
                        unreachableSeen.Add(n.Name);
                    }
                }

                await Task.Delay(1000);
            }
        }
        finally
        {
            Signal("CONT", etcd);
        }

        var resumedAt = probe.Elapsed;
        Assert.Equal(state.Nodes.Select(n => n.Name).Order(StringComparer.Ordinal), unreachableSeen.Order(StringComparer.Ordinal));

        var after = IPAddress.Parse("10.96.0.211");
        var clock = Stopwatch.StartNew();
        await lab.PutServiceAsync("outage-web-after", after);
        await AnswersAsync(after, TimeSpan.FromSeconds(20));
        var appliedIn = clock.Elapsed;
        foreach (var n in state.Nodes)
        {
            var deadline = Stopwatch.StartNew();
            while (!(await StatusAsync(state, n.Name)).StoreReachable)
            {
                Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(20), $"{n.Name} still says the store is unreachable 20 s after SIGCONT");
                await Task.Delay(500);
            }
        }

        await Task.Delay(TimeSpan.FromSeconds(2));
        await probe.StopAsync();
        var log = Path.Combine(state.NodeDir("k8s-w2"), "agent.log");
        output.WriteLine($"k8s-w2's agent log, the last 40 lines:\n{string.Join('\n', File.ReadAllLines(log).TakeLast(40))}");
        output.WriteLine($"etcd frozen {(resumedAt - frozenAt).TotalSeconds:0.0} s: probe {probe.Requests} requests, {probe.Failures.Count} failed; "
                         + $"unreachable seen on {string.Join(",", unreachableSeen)}; the Service written after SIGCONT answered in {appliedIn.TotalSeconds:0.0} s");
        Assert.True(probe.Failures.Count == 0, string.Join("\n", probe.Failures.Take(20).Select(f => $"{f.At.TotalSeconds:0.0} s: {f.Failure}")));
        Assert.True(probe.Requests > 300, $"only {probe.Requests} requests");
    }

    private async Task AnswersAsync(IPAddress clusterIp, TimeSpan patience)
    {
        using var ns = NetNs.Open(lab.Client.Netns);
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await EchoAsync(() => NetNs.Run(ns, Migration.ProbeRequests.Tcp), new IPEndPoint(clusterIp, 80));
                return;
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
            {
                Assert.True(clock.Elapsed < patience, $"{clusterIp}:80 not answering after {patience.TotalSeconds:0} s: {e.Message}");
                await Task.Delay(200);
            }
        }
    }

    // One echo exchange on a new connection, within 2 s.
    private static async Task EchoAsync(Func<Socket> newSocket, IPEndPoint target)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        using var s = newSocket();
        await s.ConnectAsync(target, cts.Token);
        await s.SendAsync(Encoding.ASCII.GetBytes("probe"), SocketFlags.None, cts.Token);
        var buf = new byte[64];
        var n = await s.ReceiveAsync(buf, SocketFlags.None, cts.Token);
        var reply = Encoding.ASCII.GetString(buf, 0, n);
        if (reply != "probe")
        {
            throw new IOException($"unexpected reply \"{reply}\"");
        }
    }

    private static void Signal(string signal, int pid)
    {
        using var kill = Process.Start("kill", [$"-{signal}", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }

    private static async Task<AgentStatus> StatusAsync(LabState state, string node) =>
        (await AgentClient.SendAsync(Lab.AgentSocket(state, node), new AgentRequest { Op = "status" }, TimeSpan.FromSeconds(5))).Status
        ?? throw new InvalidOperationException($"no status from {node}");
}
