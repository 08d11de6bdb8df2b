using System.Net;
using Loom.Agent.Cni;
using Loom.Core.AgentApi;
using Loom.Core.Model;
using Loom.Core.Pool;
using Loom.Core.Store;
using Loom.Linux;
using Loom.Store.Sqlite;
using Loom.Testing;

namespace Loom.Agent.Tests;

/// <summary>
/// A real agent (out/bin/loom agent) in a namespace of the test's own, on a SQLite store holding what a careless or
/// hostile writer could put there: it stays up, installs routes and services only for what checks out, and says
/// what it refused, in its log and its metrics.
/// </summary>
public sealed class AgentResilienceTests : IDisposable
{
    private const string UnderlayIp = AgentNode.UnderlayIp;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly AgentNode _node = new("agent");

    public void Dispose() => _node.Dispose();

    private string Db => _node.Db;

    private string LogText => _node.LogText;

    private static Node Peer(string name, string cidr, string ip, string mac) => new()
    {
        Name = name, UnderlayInterface = "eth1", UnderlayIp = IPAddress.Parse(ip), PodCidrs = [IPNetwork.Parse(cidr)], VtepMac = mac, Ready = true,
    };

    private static Service Svc(string name, string ip, int port) => new()
    {
        Namespace = "default", Name = name, ClusterIp = IPAddress.Parse(ip),
        Ports = [new ServicePort(null, Protocol.Tcp, port, 8080)],
        Selector = new Dictionary<string, string> { ["app"] = "web" },
    };

    private BackgroundProcess StartAgent() => _node.StartAgent();

    private string Nat() => Shell.InNetns(_node.Ns.Name, ["iptables-save", "-t", "nat"]).Stdout;

    private ShellRun Metrics() => Shell.InNetns(_node.Ns.Name, ["curl", "-sS", "--max-time", "5", $"http://{UnderlayIp}:9962/metrics"]);

    [Fact]
    public async Task Bad_objects_in_the_store_are_refused_one_by_one_and_the_agent_stays_up()
    {
        await using (var store = await SqliteStore.OpenAsync(Db))
        {
            await store.PutAsync(Kinds.ClusterConfig, new ClusterConfig());
            await store.PutAsync(Kinds.PodCidr, new PodCidrClaim(IPNetwork.Parse("10.244.5.0/24"), "k8s-w2"));
            await store.PutAsync(Kinds.PodCidr, new PodCidrClaim(IPNetwork.Parse("10.244.6.0/24"), "k8s-w3"));
            await store.PutAsync(Kinds.PodCidr, new PodCidrClaim(IPNetwork.Parse("10.244.7.0/24"), "k8s-w5"));
            await store.PutAsync(Kinds.Node, Peer("k8s-w2", "10.244.5.0/24", "192.168.10.102", "02:00:00:00:00:02"));
            await store.PutAsync(Kinds.Node, Peer("k8s-evil", "0.0.0.0/0", "192.168.10.66", "02:00:00:00:00:66"));
            await store.PutAsync(Kinds.Node, Peer("k8s-w4", "10.244.6.0/24", "192.168.10.104", "02:00:00:00:00:04")); // w3's CIDR
            await store.PutAsync(Kinds.Node, Peer("k8s-w5", "10.244.7.0/24", "192.168.10.105", "not-a-mac"));
            await store.PutAsync("node", "k8s-junk", "{not json");
            await store.PutAsync("service", "default/broken", "{\"namespace\": \"default\", \"name\": \"broken\", \"clusterIp\": \"10.96.0.300\"}");
            await store.PutAsync(Kinds.Service, Svc("web", "10.96.0.10", 80));
            await store.PutAsync(Kinds.Service, Svc("web2", "10.96.0.10", 80)); // web's frontend
            await store.PutAsync(Kinds.Endpoint, new Endpoint
            {
                Namespace = "default", Name = "web-1", Node = "k8s-w2", ContainerId = "c1", Interface = "eth0",
                IPs = [IPAddress.Parse("10.244.5.7")], Labels = new Dictionary<string, string> { ["app"] = "web" }, Ready = true,
            });
        }

        using var agent = StartAgent();
        var conflist = Path.Combine(_node.Dir.FullName, "net.d", NodeCniConfig.ConflistName);
        Assert.True(Shell.WaitFor(() => File.Exists(conflist) || agent.HasExited, Patience), LogText);
        Assert.False(agent.HasExited, LogText);

        // Overlay: a route to k8s-w2's pods, none for the others.
        var tunnel = _node.Ns.Netlink.LinkByName("loom.1")!;
        var routes = _node.Ns.Netlink.RouteList(System.Net.Sockets.AddressFamily.InterNetwork).Where(r => r.OutputIndex == tunnel.Index && r.Gateway is not null)
            .Select(r => r.Destination.ToString()).ToList();
        Assert.Equal(["10.244.5.0/24"], routes);

        // Services: web programmed, web2 (same frontend) and the malformed one left out.
        var nat = Nat();
        Assert.Contains("\"default/web cluster IP\"", nat, StringComparison.Ordinal);
        Assert.DoesNotContain("default/web2", nat, StringComparison.Ordinal);
        Assert.DoesNotContain("default/broken", nat, StringComparison.Ordinal);

        var log = LogText;
        Assert.Contains("refused node k8s-junk: ", log, StringComparison.Ordinal);
        Assert.Contains("refused node k8s-evil: network flannel: pod CIDR 0.0.0.0/0 is not a /24 of the pool 10.244.0.0/16 (pod-cidr-outside-pools)", log, StringComparison.Ordinal);
        Assert.Contains("refused node k8s-w4: network flannel: pod CIDR 10.244.6.0/24 is claimed by node k8s-w3 (pod-cidr-not-claimed)", log, StringComparison.Ordinal);
        Assert.Contains("refused node k8s-w5: network flannel: vtepMac \"not-a-mac\" is not a unicast Ethernet address (bad-vtep-mac)", log, StringComparison.Ordinal);
        Assert.Contains("refused service default/broken: ", log, StringComparison.Ordinal);
        Assert.Contains("refused service default/web2: default/web2 (10.96.0.10:80/tcp): skipped: frontend 10.96.0.10:80/tcp is already taken by default/web (duplicate-frontend)", log, StringComparison.Ordinal);

        var metrics = Metrics().ToString();
        foreach (var counted in new[] { "kind=\"node\",reason=\"malformed\"", "kind=\"node\",reason=\"pod-cidr-outside-pools\"", "kind=\"service\",reason=\"duplicate-frontend\"" })
        {
            Assert.True(metrics.Contains($"loom_invalid_objects_total{{{counted}}} 1\n", StringComparison.Ordinal), metrics);
        }

        // While running: another malformed Service does not keep a new good one from being programmed.
        await using (var store = await SqliteStore.OpenAsync(Db))
        {
            await store.PutAsync("service", "default/junk", "[1, 2");
            await store.PutAsync(Kinds.Service, Svc("api", "10.96.0.20", 443));
        }

        Assert.True(Shell.WaitFor(() => Nat().Contains("\"default/api cluster IP\"", StringComparison.Ordinal), Patience), LogText);
        Assert.Contains("refused service default/junk: ", LogText, StringComparison.Ordinal);

        // An endpoint registration is checked as the API server checks a pod before it reaches the store.
        var socket = Path.Combine(_node.Dir.FullName, "run", "agent.sock");
        var refused = await AgentClient.SendAsync(socket, new AgentRequest
        {
            Op = "endpoint-add",
            Endpoint = new EndpointRegistration
            {
                Namespace = "Bad\"ns", Name = "web-9", ContainerId = "c9", Interface = "eth0", Ips = ["10.244.1.9"],
                Labels = new Dictionary<string, string> { ["app"] = "web\n-A X" },
            },
        }, TimeSpan.FromSeconds(5));
        Assert.False(refused.Ok);
        Assert.StartsWith("endpoint refused: ", refused.Error, StringComparison.Ordinal);
        Assert.Contains("metadata.namespace", refused.Error, StringComparison.Ordinal);
        Assert.Contains("metadata.labels", refused.Error, StringComparison.Ordinal);
        await using (var store = await SqliteStore.OpenAsync(Db))
        {
            Assert.DoesNotContain((await store.ListAsync(Kinds.Endpoint)).Items, e => e.Value.ContainerId == "c9");
        }

        // Container ports too: a name is an IANA_SVC_NAME, the port 1-65535, the protocol TCP or UDP; good ones are stored.
        var badPorts = await AgentClient.SendAsync(socket, new AgentRequest
        {
            Op = "endpoint-add",
            Endpoint = new EndpointRegistration
            {
                Namespace = "x", Name = "web-8", ContainerId = "c8", Ips = ["10.244.1.8"],
                Ports = [new() { Name = "serve_80", ContainerPort = 80 }, new() { Name = "p", ContainerPort = 70000 }, new() { ContainerPort = 81, Protocol = "SCTP" }],
            },
        }, TimeSpan.FromSeconds(5));
        Assert.False(badPorts.Ok);
        Assert.Contains("ports[0].name: Invalid value: \"serve_80\"", badPorts.Error, StringComparison.Ordinal);
        Assert.Contains("ports[1].containerPort: Invalid value: 70000", badPorts.Error, StringComparison.Ordinal);
        Assert.Contains("ports[2].protocol: Unsupported value: \"SCTP\"", badPorts.Error, StringComparison.Ordinal);
        var good = await AgentClient.SendAsync(socket, new AgentRequest
        {
            Op = "endpoint-add",
            Endpoint = new EndpointRegistration
            {
                Namespace = "x", Name = "web-7", ContainerId = "c7", Ips = ["10.244.1.7"],
                Ports = [new() { Name = "serve-80-tcp", ContainerPort = 80, Protocol = "TCP" }, new() { ContainerPort = 81, Protocol = "UDP" }],
            },
        }, TimeSpan.FromSeconds(5));
        Assert.True(good.Ok, good.Error);
        await using (var store = await SqliteStore.OpenAsync(Db))
        {
            Assert.DoesNotContain((await store.ListAsync(Kinds.Endpoint)).Items, e => e.Value.ContainerId == "c8");
            Assert.Equal([new("serve-80-tcp", 80, Protocol.Tcp), new(null, 81, Protocol.Udp)], (await store.GetAsync(Kinds.Endpoint, "x/web-7"))!.Value.Ports);
        }

        Assert.False(agent.HasExited, LogText);
        Assert.DoesNotContain("   at ", LogText, StringComparison.Ordinal); // no stack trace: nothing was a bug
    }
}
