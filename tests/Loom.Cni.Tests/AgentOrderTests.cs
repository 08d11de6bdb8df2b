using System.Collections.Concurrent;
using Loom.Core.AgentApi;

namespace Loom.Cni.Tests;

/// <summary>
/// DEL and a rolled-back ADD against a stand-in agent on a unix socket: the agent is told (endpoint-del) before the
/// address is freed, and an address whose Endpoint the agent could not remove is kept, pending release.
/// </summary>
public sealed class AgentOrderTests : IDisposable
{
    private readonly CniNode _node = new("10.244.9.0/29");
    private readonly string _socket;
    private readonly ConcurrentQueue<string> _ops = new();
    private readonly CancellationTokenSource _cts = new();
    private AgentApiServer? _agent;

    public AgentOrderTests() => _socket = Path.Combine(_node.DataDir, "agent.sock");

    public void Dispose()
    {
        _agent?.Dispose();
        _cts.Cancel();
        _cts.Dispose();
        _node.Dispose();
    }

    private System.Text.Json.Nodes.JsonObject Conf() => _node.Conf(edit: c => c["agentSocket"] = _socket);

    private void StartAgent(Func<AgentRequest, AgentResponse> answer)
    {
        _agent?.Dispose();
        _agent = AgentApiServer.Start(_socket, (r, _) =>
        {
            var response = answer(r);
            _ops.Enqueue($"{r.Op} {r.Endpoint?.ContainerId}");
            return Task.FromResult(response);
        }, _ => { }, _cts.Token);
    }

    private void StopAgent()
    {
        _agent?.Dispose();
        _agent = null;
    }

    [Fact]
    public void Del_tells_the_agent_while_the_address_is_still_allocated()
    {
        var heldDuringDel = new List<int>();
        StartAgent(r =>
        {
            if (r.Op == "endpoint-del")
            {
                heldDuringDel.Add(_node.IpamFiles().Count);
            }

            return new AgentResponse { Ok = true };
        });
        var pod = _node.NewPod();
        _node.Add(Conf(), "o1", pod);
        _node.Del(Conf(), "o1", pod);

        Assert.Equal(["endpoint-add o1", "endpoint-del o1"], _ops);
        Assert.Equal([1], heldDuringDel);
        Assert.Empty(_node.IpamFiles());
        Assert.Empty(PendingMarks());
    }

    [Fact]
    public void Del_with_the_agent_down_keeps_the_address_until_the_endpoint_is_gone()
    {
        StartAgent(_ => new AgentResponse { Ok = true });
        var pod = _node.NewPod();
        var ip = CniNode.IpOf(_node.Add(Conf(), "o2", pod));
        StopAgent();

        var del = _node.Exec("DEL", Conf(), "o2", pod);
        Assert.True(del.Ok, del.ToString()); // DEL succeeds without the agent, as the spec asks
        Assert.Contains("agent not told of DEL", del.Stderr, StringComparison.Ordinal);
        Assert.Equal([ip], _node.IpamFiles());
        Assert.Equal(["pending_release." + ip], PendingMarks());

        // Every other address is handed out, never this one, and the runtime's GC does not free it either.
        StartAgent(_ => new AgentResponse { Ok = true });
        var gc = _node.Exec("GC", GcConf([]));
        Assert.True(gc.Ok, gc.ToString());
        for (var i = 0; i < 4; i++)
        {
            Assert.NotEqual(ip, CniNode.IpOf(_node.Add(Conf(), $"n{i}", _node.NewPod($"n{i}"))));
        }

        var full = _node.Exec("ADD", Conf(), "n9", _node.NewPod("n9"));
        Assert.False(full.Ok, full.ToString());

        // The runtime retries DEL with the agent back: the Endpoint goes, then the address.
        _node.Del(Conf(), "o2", pod);
        Assert.DoesNotContain(ip, _node.IpamFiles());
        Assert.Empty(PendingMarks());
    }

    [Fact]
    public void Add_the_agent_fails_after_storing_the_endpoint_removes_it_in_the_rollback()
    {
        StartAgent(r => r.Op == "endpoint-add"
            ? new AgentResponse { Error = "endpoint default/o3: network policy not in place: timed out" }
            : new AgentResponse { Ok = true });
        var run = _node.Exec("ADD", Conf(), "o3", _node.NewPod());

        Assert.False(run.Ok, run.ToString());
        Assert.Equal(["endpoint-add o3", "endpoint-del o3"], _ops);
        Assert.Empty(_node.IpamFiles());
        Assert.True(!_node.Netlink.LinkList().Any(l => l.Name == CniNode.HostVethName("o3")), run.ToString());
    }

    [Fact]
    public void Add_rolled_back_without_the_agent_removing_the_endpoint_holds_the_address_pending_release()
    {
        // The agent stored the endpoint, then lost its store: it can neither finish the ADD nor remove the Endpoint.
        StartAgent(_ => new AgentResponse { Error = "store unreachable" });
        var run = _node.Exec("ADD", Conf(), "o4", _node.NewPod());

        Assert.False(run.Ok, run.ToString());
        Assert.Equal(["endpoint-add o4", "endpoint-del o4"], _ops);
        var ip = Assert.Single(_node.IpamFiles());
        Assert.Equal(["pending_release." + ip], PendingMarks());
        Assert.DoesNotContain(_node.Netlink.LinkList(), l => l.Name == CniNode.HostVethName("o4"));
    }

    [Fact]
    public void Add_sends_the_registration_the_agent_reads_and_shows_its_refusal()
    {
        // loom-cni writes the agent's JSON by hand (AgentWire): the real server's deserializer must read every field.
        EndpointRegistration? seen = null;
        StartAgent(r =>
        {
            if (r.Op != "endpoint-add")
            {
                return new AgentResponse { Ok = true }; // the rollback's endpoint-del
            }

            seen = r.Endpoint;
            return new AgentResponse { Error = "policy \"x\" not in place" };
        });
        var conf = Conf();
        conf["args"] = System.Text.Json.Nodes.JsonNode.Parse("""
            {"cni": {"labels": [{"key": "app", "value": "wéb"}, {"key": "tier", "value": "a\"b"}],
                     "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}, {"containerPort": 53}]}}
            """);
        var run = _node.Exec("ADD", conf, "o5", _node.NewPod(), cniArgs: "K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web-1;IgnoreUnknown=1");

        Assert.False(run.Ok, run.ToString());
        using (var error = System.Text.Json.JsonDocument.Parse(run.Stdout))
        {
            Assert.Equal("the loom agent refused the endpoint: policy \"x\" not in place", error.RootElement.GetProperty("msg").GetString());
        }

        Assert.NotNull(seen);
        Assert.Equal(("ns1", "web-1", "o5", "eth0"), (seen.Namespace, seen.Name, seen.ContainerId, seen.Interface));
        Assert.Single(seen.Ips);
        Assert.Equal(new Dictionary<string, string> { ["app"] = "wéb", ["tier"] = "a\"b" }, seen.Labels);
        Assert.Equal([new EndpointPortRegistration { Name = "http", ContainerPort = 80, Protocol = "TCP" }, new EndpointPortRegistration { ContainerPort = 53 }], seen.Ports);
    }

    private string[] PendingMarks() =>
        [.. Directory.GetFiles(_node.NetworkDir, "pending_release.*").Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal)];

    private System.Text.Json.Nodes.JsonObject GcConf(string[] valid)
    {
        var conf = Conf();
        conf["cni.dev/valid-attachments"] = new System.Text.Json.Nodes.JsonArray([.. valid.Select(id =>
            (System.Text.Json.Nodes.JsonNode)new System.Text.Json.Nodes.JsonObject { ["containerID"] = id, ["ifname"] = "eth0" })]);
        return conf;
    }
}
