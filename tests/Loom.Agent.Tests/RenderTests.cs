using System.Net;
using System.Text.Json;
using Loom.Agent.Cni;
using Loom.Agent.Masq;

namespace Loom.Agent.Tests;

public class RenderTests
{
    private static readonly IPNetwork[] Pools = [IPNetwork.Parse("10.244.0.0/16")];

    [Fact]
    public void Masquerade_chain_keeps_pod_to_pod_traffic_and_masquerades_the_rest()
    {
        var rules = NodeMasq.Render(Pools, IPNetwork.Parse("10.244.1.0/24"), masq: true, existingNat: "", existingFilter: "");
        var lines = rules.Split('\n');
        Assert.Contains("-A POSTROUTING -m comment --comment \"loom masq\" -j LOOM-POSTRTG", lines);
        Assert.Contains("-A LOOM-POSTRTG -s 10.244.1.0/24 -d 10.244.0.0/16 -m comment --comment \"loom masq\" -j RETURN", lines);
        Assert.Contains("-A LOOM-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment \"loom masq\" -j MASQUERADE --random-fully", lines);
        Assert.Contains("-A FORWARD -m comment --comment \"loom forward\" -j LOOM-FWD", lines);
        Assert.Equal(2, lines.Count(l => l == "COMMIT"));
    }

    [Fact]
    public void Masquerade_jumps_are_not_repeated_and_are_removed_when_masq_is_off()
    {
        const string nat = "-A POSTROUTING -m comment --comment \"loom masq\" -j LOOM-POSTRTG\n";
        const string filter = "-A FORWARD -m comment --comment \"loom forward\" -j LOOM-FWD\n";
        var again = NodeMasq.Render(Pools, IPNetwork.Parse("10.244.1.0/24"), masq: true, nat, filter);
        Assert.DoesNotContain("-A POSTROUTING", again, StringComparison.Ordinal);
        Assert.DoesNotContain("-A FORWARD", again, StringComparison.Ordinal);
        var off = NodeMasq.Render(Pools, IPNetwork.Parse("10.244.1.0/24"), masq: false, nat, filter);
        Assert.Contains("-D POSTROUTING -m comment --comment \"loom masq\" -j LOOM-POSTRTG", off, StringComparison.Ordinal);
        Assert.DoesNotContain("MASQUERADE", off, StringComparison.Ordinal);
    }

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
