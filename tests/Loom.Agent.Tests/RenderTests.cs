using System.Net;
using System.Text.Json;
using Loom.Agent.Cni;

namespace Loom.Agent.Tests;

public class RenderTests
{
    private static readonly IPNetwork[] Pools = [IPNetwork.Parse("10.244.0.0/16")];

    [Fact]
    public void Subnet_file_names_the_network_the_gateway_and_the_mtu()
    {
        var env = NodeCniConfig.RenderSubnetEnv(Pools, IPNetwork.Parse("10.244.2.0/24"), 1450, ipMasq: true);
        Assert.Equal("LOOM_NETWORK=10.244.0.0/16\nLOOM_SUBNET=10.244.2.1/24\nLOOM_MTU=1450\nLOOM_IPMASQ=true\n", env);
    }

    [Fact]
    public void Conflist_is_bridge_mode_with_portmap_chained()
    {
        var config = new AgentConfig { Node = "k8s-w1", StateDir = "/run/loom/w1", IpamDataDir = "/var/lib/loom/w1" };
        using var doc = JsonDocument.Parse(NodeCniConfig.RenderConflist(config, 1450));
        var root = doc.RootElement;
        Assert.Equal("loom", root.GetProperty("name").GetString());
        var loom = root.GetProperty("plugins")[0];
        Assert.Equal("loom-cni", loom.GetProperty("type").GetString());
        Assert.Equal("cni0", loom.GetProperty("bridge").GetString());
        Assert.True(loom.GetProperty("isGateway").GetBoolean());
        Assert.Equal(1450, loom.GetProperty("mtu").GetInt32());
        Assert.Equal("/run/loom/w1/agent.sock", loom.GetProperty("agentSocket").GetString());
        Assert.Equal("/run/loom/w1/subnet.env", loom.GetProperty("ipam").GetProperty("subnetFile").GetString());
        Assert.Equal("portmap", root.GetProperty("plugins")[1].GetProperty("type").GetString());
    }

    [Fact]
    public void Agent_config_rejects_unknown_keys_with_the_file_name()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, """{"node": "a", "ifcae": "eth1"}""");
            var e = Assert.Throws<AgentConfigException>(() => AgentConfig.Load(path));
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
            Assert.Contains("ifcae", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
