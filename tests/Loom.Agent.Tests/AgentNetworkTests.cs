using System.Net;
using System.Net.Sockets;
using Loom.Agent.Cni;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Pool;
using Loom.Core.Store;
using Loom.Linux;
using Loom.Store.Sqlite;
using Loom.Testing;

namespace Loom.Agent.Tests;

/// <summary>
/// A real agent following the store's networks live: a routed network applied appears (block claimed, router IP on
/// loom_host, node object entry), becomes the node's primary through a labelled NodeConfig (05-loom.conflist, the
/// bridge conflist set aside), and deleted leaves nothing of its own behind.
/// </summary>
public sealed class AgentNetworkTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly AgentNode _node = new("agentnet");

    private static readonly Network Routed = new()
    {
        Name = "cilium", PodCidr = IPNetwork.Parse("10.245.0.0/16"), Plumbing = Plumbing.Routed,
        RoutingMode = Loom.Core.Model.RoutingMode.Tunnel, Tunnel = new TunnelConfig { Port = 8473, Device = "loom_vxlan", Vni = 2 },
    };

    public void Dispose() => _node.Dispose();

    private string NetD(string name) => Path.Combine(_node.CniConfDir, name);

    [Fact]
    public async Task A_network_applied_live_is_programmed_can_become_primary_and_deleted_leaves_nothing()
    {
        await using (var store = await SqliteStore.OpenAsync(_node.Db))
        {
            await NetworkStore.WriteClusterAsync(store, ClusterFile.Default());
        }

        using var agent = _node.StartAgent();
        Assert.True(Shell.WaitFor(() => File.Exists(NetD(NodeCniConfig.ConflistName)) || agent.HasExited, Patience), _node.LogText);
        var nl = _node.Ns.Netlink;

        await using var s = await SqliteStore.OpenAsync(_node.Db);
        await NetworkStore.ApplyAsync(s, [Routed]);
        IPNetwork? block = null;
        Assert.True(await Eventually(async () =>
        {
            var me = (await s.GetValidAsync(Kinds.Node, "k8s-w1", (_, _) => { }))?.Value;
            block = me?.Networks.GetValueOrDefault("cilium")?.PodCidr;
            return block is not null && me!.Networks["cilium"].VtepMac is not null && nl.LinkByName("loom_host") is not null;
        }), _node.LogText);
        var router = Loom.Core.Ipam.IpRange.DefaultGateway(block!.Value);
        Assert.Contains(nl.AddrList(nl.LinkByName("loom_host")!.Index, AddressFamily.InterNetwork), a => a.Ip.Equals(router));
        Assert.NotNull(nl.LinkByName("loom_vxlan"));
        Assert.NotNull(nl.LinkByName("loom.1")); // the first network is untouched
        Assert.Contains(await PodCidrAllocator.Create(s, [Routed.PodCidr], 24).ListAsync(), c => c.Cidr.Equals(block!.Value) && c.Node == "k8s-w1");

        // Primary by label, as a CiliumNodeConfig: 05-loom.conflist, and the bridge's conflist set aside.
        await NetworkStore.PutNodeConfigAsync(s, new NodeConfig
        {
            Node = "migration", Network = "cilium",
            NodeSelector = new Loom.Core.Selection.LabelSelector { MatchLabels = new Dictionary<string, string> { ["io.loom.migration/loom-default"] = "true" } },
        }, expectedRevision: 0);
        var self = (await s.GetValidAsync(Kinds.Node, "k8s-w1", (_, _) => { }))!;
        await s.PutAsync(Kinds.Node, self.Value with { Labels = new Dictionary<string, string> { ["io.loom.migration/loom-default"] = "true" } }, self.Revision);
        Assert.True(Shell.WaitFor(() => File.Exists(NetD(NodeCniConfig.RoutedConflistName)), Patience), _node.LogText);
        Assert.True(Shell.WaitFor(() => File.Exists(NetD(NodeCniConfig.ConflistName + NodeCniConfig.BackupSuffix)) && !File.Exists(NetD(NodeCniConfig.ConflistName)), Patience),
            string.Join(", ", Directory.GetFiles(_node.CniConfDir)));
        Assert.Contains("\"name\": \"cilium\"", File.ReadAllText(NetD(NodeCniConfig.RoutedConflistName)), StringComparison.Ordinal);

        // Back to the default, then the network deleted: device, router IP, loom_host, claim, files all gone.
        await s.DeleteAsync(Kinds.NodeConfig, "migration");
        Assert.True(Shell.WaitFor(() => File.Exists(NetD(NodeCniConfig.ConflistName)), Patience), _node.LogText);
        Assert.True(await NetworkStore.DeleteAsync(s, "cilium"));
        Assert.True(Shell.WaitFor(() => nl.LinkByName("loom_vxlan") is null && nl.LinkByName("loom_host") is null, Patience), _node.LogText);
        Assert.True(await Eventually(async () => !(await PodCidrAllocator.Create(s, [Routed.PodCidr], 24).ListAsync()).Any(c => Routed.PodCidr.Contains(c.Cidr.BaseAddress))), _node.LogText);
        Assert.True(Shell.WaitFor(() => !File.Exists(NetD(NodeCniConfig.RoutedConflistName)) && !File.Exists(NetD(NodeCniConfig.RoutedConflistName + NodeCniConfig.BackupSuffix)), Patience),
            string.Join(", ", Directory.GetFiles(_node.CniConfDir)));
        Assert.DoesNotContain(nl.RouteList(AddressFamily.InterNetwork), r => Routed.PodCidr.Contains(r.Destination.BaseAddress));
        Assert.NotNull(nl.LinkByName("loom.1"));
        Assert.False(agent.HasExited, _node.LogText);
    }

    [Fact]
    public async Task A_network_object_that_no_longer_decodes_is_refused_not_taken_for_deleted()
    {
        await using (var store = await SqliteStore.OpenAsync(_node.Db))
        {
            await NetworkStore.WriteClusterAsync(store, ClusterFile.Default());
            await NetworkStore.ApplyAsync(store, [Routed]);
        }

        using var agent = _node.StartAgent();
        var nl = _node.Ns.Netlink;
        Assert.True(Shell.WaitFor(() => nl.LinkByName("loom_vxlan") is not null && nl.LinkByName("loom_host") is not null, Patience), _node.LogText);
        await using var s = await SqliteStore.OpenAsync(_node.Db);
        await s.PutAsync(Kinds.Network.Name, "cilium", "{\"name\": \"cilium\", \"plumbing\": \"quantum\"}");
        Assert.True(Shell.WaitFor(() => _node.LogText.Contains("refused network cilium", StringComparison.Ordinal), Patience), _node.LogText);
        await Task.Delay(1500); // a few more passes
        Assert.NotNull(nl.LinkByName("loom_vxlan"));
        Assert.NotNull(nl.LinkByName("loom_host"));
        Assert.Contains(await PodCidrAllocator.Create(s, [Routed.PodCidr], 24).ListAsync(), c => Routed.PodCidr.Contains(c.Cidr.BaseAddress));
        Assert.False(agent.HasExited, _node.LogText);
    }

    private static async Task<bool> Eventually(Func<Task<bool>> condition)
    {
        var until = DateTime.UtcNow + Patience;
        while (DateTime.UtcNow < until)
        {
            if (await condition())
            {
                return true;
            }

            await Task.Delay(100);
        }

        return false;
    }
}
