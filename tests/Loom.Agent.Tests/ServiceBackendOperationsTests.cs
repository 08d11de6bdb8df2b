using System.Net;
using Loom.Agent.Services;
using Loom.Core.Model;
using Loom.Core.Reconcile;
using Loom.Core.Store;
using Loom.Datapath.Services;
using Loom.Store;

namespace Loom.Agent.Tests;

/// <summary>The services reconciler's target against a recording backend (no kernel): what Update is handed, and switching.</summary>
public sealed class ServiceBackendOperationsTests
{
    private static ServicePortState Port(string clusterIp, int port) => new(
        new ServicePortName("default", "web", "http"), new Frontend(IPAddress.Parse(clusterIp), Protocol.Tcp, port),
        SessionAffinity.None, 0, [new BackendAddress(IPAddress.Parse("10.244.1.5"), 8080)]);

    private static ServiceBackendOperations Ops(IStore store, Dictionary<string, ServicePortState> desired, Func<ServiceProxyMode, IServiceBackend> create) =>
        new(create, ServiceProxyMode.Ebpf, () => desired, new AgentLoops(store, TextWriter.Null));

    [Fact]
    public async Task A_port_whose_frontend_changed_has_its_old_frontend_removed()
    {
        var backend = new RecordingServiceBackend(ServiceProxyMode.Ebpf);
        var desired = new Dictionary<string, ServicePortState>();
        await using var store = MemoryStore.Create();
        using var ops = Ops(store, desired, k => k == ServiceProxyMode.Ebpf ? backend : new RecordingServiceBackend(k));
        var before = Port("10.96.0.10", 80);
        desired["default/web:http/TCP"] = before;
        await ops.ApplyBatchAsync([new RowChange<string, ServicePortState>("default/web:http/TCP", before, false)], default);

        // The ClusterIP moved: the backend keys its entries by frontend, so the old one must be named to go.
        var after = Port("10.96.0.11", 80);
        desired["default/web:http/TCP"] = after;
        await ops.ApplyBatchAsync([new RowChange<string, ServicePortState>("default/web:http/TCP", after, false)], default);

        var (changed, removed) = Assert.Single(backend.Updates);
        Assert.Equal([after], changed);
        Assert.Equal([before], removed);
    }

    [Fact]
    public async Task A_switch_whose_first_sync_fails_disposes_the_new_backend()
    {
        var created = new List<RecordingServiceBackend>();
        var desired = new Dictionary<string, ServicePortState> { ["default/web:http/TCP"] = Port("10.96.0.10", 80) };
        await using var store = MemoryStore.Create();
        using var ops = Ops(store, desired, k =>
        {
            var b = new RecordingServiceBackend(k) { FailSync = k == ServiceProxyMode.Nftables };
            created.Add(b);
            return b;
        });
        await ops.PruneAsync(desired, default);
        ops.Want(ServiceProxyMode.Nftables);

        await Assert.ThrowsAsync<InvalidOperationException>(() => ops.PruneAsync(desired, default));
        var failed = Assert.Single(created, b => b.Kind == ServiceProxyMode.Nftables && b.Syncs > 0);
        Assert.True(failed.Disposed);
        Assert.Equal(ServiceProxyMode.Ebpf, ops.Kind);
    }
}
