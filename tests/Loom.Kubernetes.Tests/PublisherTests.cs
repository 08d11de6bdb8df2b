using System.Net;
using System.Text.Json;
using Loom.Core.Model;
using Loom.Core.Store;

namespace Loom.Kubernetes.Tests;

public sealed class PublisherTests
{
    private static Node Mine(bool ready, string? vtep = "0a:58:0a:f4:01:01") => new()
    {
        Name = "n1", UnderlayInterface = "eth1", UnderlayIp = IPAddress.Parse("192.168.50.11"), PodCidrs = [IPNetwork.Parse("10.244.1.0/24")],
        VtepMac = vtep, Ready = ready, Heartbeat = DateTimeOffset.UtcNow,
        Networks = new Dictionary<string, NodeNetwork> { ["flannel"] = new() { PodCidr = IPNetwork.Parse("10.244.1.0/24"), VtepMac = vtep } },
    };

    [Fact]
    public async Task The_agents_node_is_published_as_annotations_the_condition_and_its_LoomNode()
    {
        await using var server = new ReplayServer();
        await using var h = new Harness(server).WithFixtures();
        await h.StartAsync();
        await h.Store.PutAsync(Kinds.Node, Mine(ready: false));

        await Harness.EventuallyAsync(() => Task.FromResult(server.Seen("PATCH", "/apis/loom.io/v1alpha1/loomnodes/n1/status").Count == 1), "the LoomNode's status");
        var annotations = Assert.Single(server.Seen("PATCH", "/api/v1/nodes/n1"));
        Assert.Equal("application/merge-patch+json", annotations.ContentType);
        using (var doc = JsonDocument.Parse(annotations.Body))
        {
            var a = doc.RootElement.GetProperty("metadata").GetProperty("annotations");
            Assert.Equal("192.168.50.11", a.GetProperty("loom.io/public-ip").GetString());
            Assert.Equal("0a:58:0a:f4:01:01", a.GetProperty("loom.io/vtep-mac").GetString());
            Assert.Equal("eth1", a.GetProperty("loom.io/underlay-interface").GetString());
        }

        Assert.Empty(server.Seen("PATCH", "/api/v1/nodes/n1/status")); // not ready yet: no condition
        Assert.Single(server.Seen("GET", "/apis/loom.io/v1alpha1/loomnodes/n1")); // 404 (unscripted)...
        var created = Assert.Single(server.Seen("POST", "/apis/loom.io/v1alpha1/loomnodes")); // ...so created
        using (var doc = JsonDocument.Parse(created.Body))
        {
            Assert.Equal("loom.io/v1alpha1", doc.RootElement.GetProperty("apiVersion").GetString());
            Assert.Equal("LoomNode", doc.RootElement.GetProperty("kind").GetString());
            Assert.Equal("n1", doc.RootElement.GetProperty("metadata").GetProperty("name").GetString());
        }

        var status = server.Seen("PATCH", "/apis/loom.io/v1alpha1/loomnodes/n1/status")[0];
        using (var doc = JsonDocument.Parse(status.Body))
        {
            var s = doc.RootElement.GetProperty("status");
            Assert.Equal("10.244.1.0/24", s.GetProperty("podCidrs")[0].GetString());
            Assert.Equal("192.168.50.11", s.GetProperty("underlayIp").GetString());
            Assert.False(s.GetProperty("ready").GetBoolean());
            Assert.Equal("10.244.1.0/24", s.GetProperty("networks").GetProperty("flannel").GetProperty("podCIDR").GetString());
            Assert.True(s.TryGetProperty("heartbeat", out _));
        }

        // Ready: the condition, once.
        await h.Store.PutAsync(Kinds.Node, Mine(ready: true));
        await Harness.EventuallyAsync(() => Task.FromResult(server.Seen("PATCH", "/api/v1/nodes/n1/status").Count == 1), "the NetworkUnavailable condition");
        var condition = server.Seen("PATCH", "/api/v1/nodes/n1/status")[0];
        Assert.Equal("application/strategic-merge-patch+json", condition.ContentType);
        using (var doc = JsonDocument.Parse(condition.Body))
        {
            var c = doc.RootElement.GetProperty("status").GetProperty("conditions")[0];
            Assert.Equal("NetworkUnavailable", c.GetProperty("type").GetString());
            Assert.Equal("False", c.GetProperty("status").GetString());
            Assert.Equal("LoomIsUp", c.GetProperty("reason").GetString());
            Assert.Equal("Loom is running on this node", c.GetProperty("message").GetString());
        }
    }

    [Fact]
    public async Task A_heartbeat_alone_publishes_nothing()
    {
        await using var server = new ReplayServer();
        server.On("GET /apis/loom.io/v1alpha1/loomnodes/n1", Reply.Json("""{"apiVersion":"loom.io/v1alpha1","kind":"LoomNode","metadata":{"name":"n1","resourceVersion":"7"},"spec":{}}"""));
        await using var store = MemoryStore.Create();
        using var api = ApiConnection.Open(new KubernetesOptions { Kubeconfig = Harness.WriteKubeconfig(Directory.CreateTempSubdirectory().FullName, server.Url) });
        var publisher = new NodePublisher(api, store, "n1", TextWriter.Null);
        await publisher.PublishAsync(Mine(ready: true), CancellationToken.None);
        var before = server.Requests.Count;
        await publisher.PublishAsync(Mine(ready: true) with { Heartbeat = DateTimeOffset.UtcNow.AddSeconds(5) }, CancellationToken.None);
        Assert.Equal(before, server.Requests.Count);
        Assert.Empty(server.Seen("POST", "/apis/loom.io/v1alpha1/loomnodes")); // it existed

        await publisher.PublishAsync(Mine(ready: true, vtep: "0a:58:0a:f4:01:02"), CancellationToken.None);
        Assert.Equal(2, server.Seen("PATCH", "/api/v1/nodes/n1").Count);
        Assert.Single(server.Seen("PATCH", "/api/v1/nodes/n1/status")); // the condition stays set
    }
}
