using System.Net;
using Loom.Agent.Services;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Datapath.Services;

namespace Loom.Agent.Tests;

/// <summary>
/// The services controller end to end on an in-memory store with a recording backend: the first write is a full sync,
/// later changes reach the backend as Update of just the touched ports, a failed apply falls back to a full sync, and a
/// NodeConfig switch programs the new implementation before flushing the others. No kernel involved.
/// </summary>
public sealed class ServiceControllerTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private sealed class RecordingBackend(ServiceProxyMode kind, List<string> journal) : IServiceBackend
    {
        private readonly Dictionary<string, ServicePortState> _kernel = [];

        public int FailNext { get; set; }

        public string Name => kind.ToString().ToLowerInvariant();

        public bool NeedsFullSync { get; private set; } = true;

        public Dictionary<string, ServicePortState> Kernel => _kernel;

        public void Sync(IReadOnlyCollection<ServicePortState> desired)
        {
            Fail();
            _kernel.Clear();
            foreach (var s in desired)
            {
                _kernel[ServiceTable.PortKey(s)] = s;
            }

            NeedsFullSync = false;
            lock (journal)
            {
                journal.Add($"{Name} sync {desired.Count}");
            }
        }

        public void Update(IReadOnlyCollection<ServicePortState> changed, IReadOnlyCollection<ServicePortState> removed)
        {
            Assert.False(NeedsFullSync, "Update called while the backend needs a full sync");
            Fail();
            foreach (var s in removed)
            {
                _kernel.Remove(ServiceTable.PortKey(s));
            }

            foreach (var s in changed)
            {
                _kernel[ServiceTable.PortKey(s)] = s;
            }

            lock (journal)
            {
                journal.Add($"{Name} update +{string.Join(",", changed.Select(c => c.Name))} -{string.Join(",", removed.Select(c => c.Name))}");
            }
        }

        public void RequestFullSync() => NeedsFullSync = true;

        public void Flush()
        {
            lock (journal)
            {
                journal.Add($"{Name} flush");
            }
        }

        public string Explain(ServicePortState service) => "";

        private void Fail()
        {
            if (FailNext > 0)
            {
                FailNext--;
                NeedsFullSync = true;
                throw new InvalidOperationException("iptables-restore: exit 1");
            }
        }
    }

    private static int Count(List<string> journal)
    {
        lock (journal)
        {
            return journal.Count;
        }
    }

    private static Service Svc(string name, int ip, string app) => new()
    {
        Namespace = "default", Name = name, ClusterIp = IPAddress.Parse($"10.96.0.{ip}"), Ports = [new ServicePort(null, Protocol.Tcp, 80, 8080)],
        Selector = new Dictionary<string, string> { ["app"] = app },
    };

    private static Endpoint Pod(string name, int ip, string app) => new()
    {
        Namespace = "default", Name = name, Node = "k8s-w1", ContainerId = name, IPs = [IPAddress.Parse($"10.244.1.{ip}")],
        Labels = new Dictionary<string, string> { ["app"] = app }, Ready = true,
    };

    [Fact]
    public async Task Changes_reach_the_backend_as_updates_of_the_touched_ports_only_and_a_failure_falls_back_to_a_full_sync()
    {
        await using var store = MemoryStore.Create();
        for (var i = 0; i < 50; i++)
        {
            await store.PutAsync(Kinds.Service, Svc($"s{i}", 10 + i, $"a{i}"));
            await store.PutAsync(Kinds.Endpoint, Pod($"p{i}", 10 + i, $"a{i}"));
        }

        var journal = new List<string>();
        var backends = new Dictionary<ServiceProxyMode, RecordingBackend>();
        var log = new LogCapture();
        var loops = new AgentLoops(store, log) { RetryFirst = TimeSpan.FromMilliseconds(20), RetryCap = TimeSpan.FromMilliseconds(50) };
        var node = new NodeContext("k8s-w1", new AgentConfig { Node = "k8s-w1" }, new ClusterConfig(), IPAddress.Parse("192.168.10.101"), 1500, IPNetwork.Parse("10.244.1.0/24"));
        RecordingBackend Create(ServiceProxyMode k) => backends.TryGetValue(k, out var b) ? b : backends[k] = new RecordingBackend(k, journal);
        using var controller = new ServiceController(node, store, loops, Create);
        using var cts = new CancellationTokenSource();

        await controller.StartAsync(cts.Token);
        var run = controller.RunAsync(cts.Token);
        var ipt = backends[ServiceProxyMode.Iptables];
        Assert.Equal(50, ipt.Kernel.Count);
        Assert.Equal(["iptables sync 50", "nftables flush", "ebpf flush"], journal);

        // One endpoint's change: one port rewritten, nothing else touched.
        journal.Clear();
        await store.PutAsync(Kinds.Endpoint, Pod("p7", 200, "a7"));
        Assert.True(SpinWait.SpinUntil(() => Count(journal) >= 1, Patience), log.Text);
        Assert.Equal(IPAddress.Parse("10.244.1.200"), ipt.Kernel["default/s7/tcp"].Backends.Single().Address);
        Assert.Equal(["iptables update +default/s7 -"], journal);

        // A failed apply: the row is retried, and the retry is a full sync since the backend lost track.
        journal.Clear();
        ipt.FailNext = 1;
        await store.DeleteAsync(Kinds.Service, "default/s3");
        Assert.True(SpinWait.SpinUntil(() => Count(journal) >= 1, Patience), log.Text);
        Assert.False(ipt.Kernel.ContainsKey("default/s3/tcp"));
        Assert.Equal(["iptables sync 49"], journal);
        Assert.Contains("InvalidOperationException: iptables-restore: exit 1", log.Text, StringComparison.Ordinal);
        Assert.Equal(49, controller.PortCount);

        // The node's override switches the implementation: the new one programs everything, then the others are flushed.
        journal.Clear();
        await store.PutAsync(Kinds.NodeConfig, new NodeConfig { Node = "k8s-w1", ServiceBackend = ServiceProxyMode.Ebpf });
        Assert.True(SpinWait.SpinUntil(() => controller.BackendName == "ebpf" && Count(journal) >= 3, Patience), $"{string.Join("; ", journal)}\n{log.Text}");
        Assert.Equal(["ebpf sync 49", "iptables flush", "nftables flush"], journal);
        Assert.Equal(49, backends[ServiceProxyMode.Ebpf].Kernel.Count);

        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
    }
}
