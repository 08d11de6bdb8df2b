using System.Net;
using Loom.Agent.Services;
using Loom.Core.Model;
using Loom.Core.Store;

namespace Loom.Agent.Tests;

/// <summary>The services controller over an in-memory store and recording backends: switching implementation.</summary>
public sealed class ServiceControllerSwitchTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_switch_judges_every_port_again_against_the_Maglev_table_of_the_new_implementation()
    {
        await using var store = MemoryStore.Create();
        await store.PutAsync(Kinds.Service, new Service
        {
            Namespace = "default", Name = "big", ClusterIp = IPAddress.Parse("10.96.0.10"),
            Ports = [new ServicePort("http", Protocol.Tcp, 80, 8080)], Selector = new Dictionary<string, string> { ["app"] = "big" },
        });
        for (var i = 0; i < 252; i++)
        {
            await store.PutAsync(Kinds.Endpoint, new Endpoint
            {
                Namespace = "default", Name = $"p{i}", Node = "k8s-w2", ContainerId = $"c{i}", Ready = true,
                IPs = [IPAddress.Parse($"10.244.{i / 200}.{(i % 200) + 1}")], Labels = new Dictionary<string, string> { ["app"] = "big" },
            });
        }

        var config = new AgentConfig { Node = "k8s-w1", Iface = "ltnone0", LoadBalancerAlgorithm = "maglev", MaglevTableSize = 251 };
        var node = new NodeContext("k8s-w1", config, new ClusterConfig(), IPAddress.Loopback, 1500, IPNetwork.Parse("10.244.9.0/24"));
        var log = new LogCapture();
        var created = new List<RecordingServiceBackend>();
        using var services = new ServiceController(node, store, new AgentLoops(store, log), k =>
        {
            var b = new RecordingServiceBackend(k) { MaxBackends = k == ServiceProxyMode.Ebpf ? 251 : int.MaxValue };
            lock (created)
            {
                created.Add(b);
            }

            return b;
        });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await services.StartAsync(cts.Token);
        Assert.Equal(1, services.PortCount);
        var run = services.RunAsync(cts.Token);

        // To eBPF: the port does not fit its Maglev table, so it is refused there rather than failing the whole switch.
        await store.PutAsync(Kinds.NodeConfig, new NodeConfig { Node = "k8s-w1", ServiceBackend = ServiceProxyMode.Ebpf });
        Assert.True(SpinWait.SpinUntil(() => services.Kind == ServiceProxyMode.Ebpf, Patience), log.Text);
        Assert.Equal(0, services.PortCount);
        Assert.Contains("maglev-table-too-small", log.Text, StringComparison.Ordinal);

        // Back to iptables, which has no such limit: the port is programmed again without waiting for it to change.
        await store.PutAsync(Kinds.NodeConfig, new NodeConfig { Node = "k8s-w1", ServiceBackend = ServiceProxyMode.Iptables });
        Assert.True(SpinWait.SpinUntil(() => services.Kind == ServiceProxyMode.Iptables, Patience), log.Text);
        Assert.Equal(1, services.PortCount);
        RecordingServiceBackend iptables;
        lock (created)
        {
            iptables = created.Last(b => b.Kind == ServiceProxyMode.Iptables && b.Syncs > 0);
        }

        Assert.Equal(252, Assert.Single(iptables.LastSync).Backends.Count);

        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
    }
}
