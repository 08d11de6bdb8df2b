using System.Text.Json;
using System.Text.Json.Nodes;
using Loom.Linux;
using Loom.Testing;
using Xunit.Abstractions;

namespace Loom.Cni.Tests.Chaining;

/// <summary>
/// [loom-cni, portmap, tuning] run as libcni runs a conflist, all inside a node namespace: a web server in one pod is
/// reached through the host port from a second pod on the same bridge (pod → gateway:hostPort → DNAT → pod).
/// </summary>
public sealed class PortmapTuningChainTests(ITestOutputHelper output) : IDisposable
{
    /// <summary>
    /// containernetworking/plugins#819 (fixed upstream after v1.1.1, which Debian 12 ships): portmap's CHECK also looks
    /// for an ip6tables DNAT chain when the pod only has IPv4, and fails. Tolerated only with exactly this message.
    /// </summary>
    internal const string PortmapIpv6CheckBug = "could not check ipv6 dnat: chain CNI-DN-";

    private const int HostPort = 18080;
    private const string Mac = "0a:58:0a:f4:15:42";
    private readonly TestNetns _node = new("node");
    private readonly TestNetns _server = new("web");
    private readonly TestNetns _client = new("cli");
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-chain-pm").FullName;
    private readonly List<Action> _cleanup = [];

    public void Dispose()
    {
        foreach (var step in Enumerable.Reverse(_cleanup))
        {
            try
            {
                step();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Console.Error.WriteLine("cleanup: " + e.Message);
            }
        }

        _client.Dispose();
        _server.Dispose();
        _node.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private static string Ipam(string type, string subnet, string dataDir) => type == "loom"
        ? $$"""{"type": "loom", "ranges": [[{"subnet": "{{subnet}}"}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "{{dataDir}}"}"""
        : $$"""{"type": "host-local", "ranges": [[{"subnet": "{{subnet}}"}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "{{dataDir}}"}""";

    private string Conflist(string ipam) => $$"""
        {"cniVersion": "1.0.0", "name": "chain", "plugins": [
          {"type": "loom-cni", "bridge": "cni0", "isGateway": true, "ipam": {{Ipam(ipam, "10.244.21.0/24", _dir)}}},
          {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
          {"type": "tuning", "capabilities": {"mac": true}, "promisc": true, "mtu": 1400,
           "sysctl": {"net.core.somaxconn": "512"}, "dataDir": "{{_dir}}/tuning"}
        ]}
        """;

    private string ClientConflist(string ipam) => $$"""
        {"cniVersion": "1.0.0", "name": "chain", "plugins": [
          {"type": "loom-cni", "bridge": "cni0", "isGateway": true, "ipam": {{Ipam(ipam, "10.244.21.0/24", _dir)}}}
        ]}
        """;

    private static JsonObject RuntimeConfig() => new()
    {
        ["portMappings"] = new JsonArray(new JsonObject { ["hostPort"] = HostPort, ["containerPort"] = 80, ["protocol"] = "tcp" }),
        ["mac"] = Mac,
    };

    [Theory]
    [InlineData("loom")]
    [InlineData("host-local")]
    public void Pod_is_reachable_through_the_host_port_from_another_pod_and_del_undoes_every_plugin(string ipam)
    {
        var chain = new ConflistRunner(_node.Handle, Conflist(ipam));
        var serverNs = $"/var/run/netns/{_server.Name}";
        var rc = RuntimeConfig();

        // ADD: loom-cni, then portmap, then tuning, each fed the one before it.
        var add = chain.Add("web1", serverNs, runtimeConfig: rc);
        _cleanup.Add(() => chain.Del("web1", serverNs, runtimeConfig: rc));
        Assert.True(add.Ok, add.ToString());
        Assert.Equal(["loom-cni", "portmap", "tuning"], add.Steps.Select(s => s.Type));
        // Capabilities route runtime config: portmap gets portMappings only, tuning mac only, loom-cni nothing.
        Assert.DoesNotContain("runtimeConfig", add.Steps[0].Config, StringComparison.Ordinal);
        Assert.Contains("\"runtimeConfig\":{\"portMappings\":", add.Steps[1].Config, StringComparison.Ordinal);
        Assert.Contains($"\"runtimeConfig\":{{\"mac\":\"{Mac}\"}}", add.Steps[2].Config, StringComparison.Ordinal);
        Assert.Contains("\"prevResult\"", add.Steps[2].Config, StringComparison.Ordinal);

        // The final result still carries loom-cni's interfaces and address; tuning updated the pod's MAC in it.
        using var result = JsonDocument.Parse(add.Result!);
        var r = result.RootElement;
        Assert.Equal("1.0.0", r.GetProperty("cniVersion").GetString());
        var hostVeth = HostVeth.Name("web1", "eth0");
        Assert.Equal(["cni0", hostVeth, "eth0"], r.GetProperty("interfaces").EnumerateArray().Select(i => i.GetProperty("name").GetString()));
        Assert.Equal(serverNs, Net.Interface(r, "eth0").GetProperty("sandbox").GetString());
        Assert.Equal(Mac, Net.Interface(r, "eth0").GetProperty("mac").GetString());
        var podIp = Net.PodAddress(r);
        Assert.StartsWith("10.244.21.", podIp, StringComparison.Ordinal);
        Assert.Equal(2, r.GetProperty("ips")[0].GetProperty("interface").GetInt32());
        Assert.Equal("10.244.21.1", r.GetProperty("ips")[0].GetProperty("gateway").GetString());
        Assert.True(File.Exists(Path.Combine(_dir, "chain", podIp)), "IPAM holds the pod's address");

        // tuning's changes are in the pod.
        var eth0 = _server.Netlink.LinkByName("eth0");
        Assert.NotNull(eth0);
        Assert.Equal(1400, eth0.Mtu);
        Assert.True((eth0.Flags & 0x100) != 0, "eth0 is promiscuous (IFF_PROMISC)");
        Assert.Equal(Mac, string.Join(':', eth0.HardwareAddr!.GetAddressBytes().Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture))));
        Assert.Equal("512", Net.Sysctl(_server.Name, "net.core.somaxconn"));
        Assert.NotEqual("512", Net.Sysctl(_client.Name, "net.core.somaxconn")); // the sysctl is per pod, not global

        // portmap's DNAT lives in the node namespace.
        var nat = Net.NatRules(_node.Name);
        Assert.Contains(":CNI-HOSTPORT-DNAT", nat, StringComparison.Ordinal);
        Assert.Contains($"--dport {HostPort} -j DNAT --to-destination {podIp}:80", nat, StringComparison.Ordinal);
        Assert.Contains("id: \\\"web1\\\"", nat, StringComparison.Ordinal);

        // Traffic: a web server in the pod, a second pod (same bridge, same IPAM) connecting to gateway:hostPort.
        var token = "loom-chain-" + Guid.NewGuid().ToString("N");
        var www = Directory.CreateDirectory(Path.Combine(_dir, "www")).FullName;
        File.WriteAllText(Path.Combine(www, "index.html"), token);
        using var httpd = Net.Httpd(_server.Name, www, 80);
        var direct = Net.GetWhenUp(_node.Name, $"http://{podIp}:80/", token, TimeSpan.FromSeconds(5));
        Assert.True(direct.Ok && direct.Stdout == token, $"{direct}\nhttpd exited: {httpd.HasExited}");

        var clientChain = new ConflistRunner(_node.Handle, ClientConflist(ipam));
        var clientNs = $"/var/run/netns/{_client.Name}";
        var clientAdd = clientChain.Add("cli1", clientNs);
        _cleanup.Add(() => clientChain.Del("cli1", clientNs));
        Assert.True(clientAdd.Ok, clientAdd.ToString());
        Assert.Equal(token, Net.Get(_client.Name, $"http://10.244.21.1:{HostPort}/"));
        Assert.Null(Net.Get(_client.Name, $"http://10.244.21.1:{HostPort + 1}/", 1)); // nothing behind an unmapped port

        // CHECK: every plugin, in order, against the cached result.
        var check = chain.Check("web1", serverNs, runtimeConfig: rc);
        Assert.True(check.Steps[0].Run.Ok, check.ToString()); // loom-cni
        if (!check.Ok)
        {
            Assert.True(check.Failed!.Type == "portmap" && check.Failed.Run.Stdout.Contains(PortmapIpv6CheckBug, StringComparison.Ordinal), check.ToString());
            output.WriteLine($"portmap CHECK hit the known upstream IPv6 bug (plugins#819): {check.Failed.Run.Stdout.Trim()}; checking tuning on its own");
            var tuning = chain.CheckOne(2, "web1", serverNs, runtimeConfig: rc);
            Assert.True(tuning.Run.Ok, tuning.ToString());
        }
        else
        {
            Assert.Equal(["loom-cni", "portmap", "tuning"], check.Steps.Select(s => s.Type));
        }

        // ... and CHECK does notice a broken attachment: with the pod's eth0 down, loom-cni fails it first.
        _server.Netlink.LinkSetDown(eth0.Index);
        var broken = chain.Check("web1", serverNs, runtimeConfig: rc);
        Assert.Equal("loom-cni", broken.Failed?.Type);
        Assert.Contains("down", broken.Failed!.Run.Stdout, StringComparison.Ordinal);
        _server.Netlink.LinkSetUp(eth0.Index);

        // DEL in reverse: tuning restores, portmap drops its rules, loom-cni removes the veth and frees the address.
        var del = chain.Del("web1", serverNs, runtimeConfig: rc);
        Assert.True(del.Ok, del.ToString());
        Assert.Equal(["tuning", "portmap", "loom-cni"], del.Steps.Select(s => s.Type));
        Assert.All(del.Steps, s => Assert.Contains("\"prevResult\"", s.Config, StringComparison.Ordinal));
        nat = Net.NatRules(_node.Name);
        Assert.DoesNotContain($"--to-destination {podIp}:80", nat, StringComparison.Ordinal);
        Assert.DoesNotContain("id: \\\"web1\\\"", nat, StringComparison.Ordinal);
        Assert.Null(_server.Netlink.LinkByName("eth0"));
        Assert.Null(_node.Netlink.LinkByName(hostVeth));
        Assert.False(File.Exists(Path.Combine(_dir, "chain", podIp)), "the address is free again");
        Assert.Empty(Directory.Exists(Path.Combine(_dir, "tuning")) ? Directory.GetFiles(Path.Combine(_dir, "tuning")) : []);
        Assert.Null(Net.Get(_client.Name, $"http://10.244.21.1:{HostPort}/", 1));

        // A second DEL (the runtime retrying) is still success.
        Assert.True(chain.Del("web1", serverNs, runtimeConfig: rc).Ok);
    }
}
