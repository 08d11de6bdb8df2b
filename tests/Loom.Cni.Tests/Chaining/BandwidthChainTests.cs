using System.Text.Json.Nodes;
using Loom.Testing;

namespace Loom.Cni.Tests.Chaining;

/// <summary>[loom-cni, bandwidth]: bandwidth shapes loom-cni's host veth and puts its ifb in the node namespace.</summary>
public sealed class BandwidthChainTests : IDisposable
{
    private readonly TestNetns _node = new("node");
    private readonly TestNetns _pod = new("pod");
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-chain-bw").FullName;
    private ConflistRunner? _chain;

    public void Dispose()
    {
        _chain?.Del("bw1", $"/var/run/netns/{_pod.Name}", runtimeConfig: RuntimeConfig());
        _pod.Dispose();
        _node.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private string Conflist() => $$$"""
        {"cniVersion": "1.0.0", "name": "bw", "plugins": [
          {"type": "loom-cni", "bridge": "cni0", "isGateway": true,
           "ipam": {"type": "loom", "ranges": [[{"subnet": "10.244.22.0/24"}]], "dataDir": "{{{_dir}}}"}},
          {"type": "bandwidth", "capabilities": {"bandwidth": true}}
        ]}
        """;

    // Bits per second and bits, as Kubernetes passes them from the pod's bandwidth annotations.
    private static JsonObject RuntimeConfig() => new()
    {
        ["bandwidth"] = new JsonObject
        {
            ["ingressRate"] = 8_000_000,
            ["ingressBurst"] = 16_000_000,
            ["egressRate"] = 4_000_000,
            ["egressBurst"] = 8_000_000,
        },
    };

    private static string Tc(string netns, string dev)
    {
        var run = Shell.InNetns(netns, [Shell.Require("tc"), "qdisc", "show", "dev", dev]);
        Assert.True(run.Ok, run.ToString());
        return run.Stdout;
    }

    [Fact]
    public void Bandwidth_shapes_the_pod_from_the_node_namespace_and_del_removes_its_ifb()
    {
        var rootLinks = Net.RootLinks();
        _chain = new ConflistRunner(_node.Handle, Conflist());
        var podNs = $"/var/run/netns/{_pod.Name}";
        var add = _chain.Add("bw1", podNs, runtimeConfig: RuntimeConfig());
        Assert.True(add.Ok, add.ToString());
        Assert.Contains("\"runtimeConfig\":{\"bandwidth\":{\"ingressRate\":8000000", add.Steps[1].Config, StringComparison.Ordinal);

        var hostVeth = HostVeth.Name("bw1", "eth0");
        Assert.NotNull(_node.Netlink.LinkByName(hostVeth));
        var ifb = Assert.Single(_node.Netlink.LinkList(), l => l.Kind == "ifb");
        Assert.StartsWith("bwp", ifb.Name, StringComparison.Ordinal);
        // Traffic to the pod is limited on the host veth; traffic from the pod is redirected to the ifb and limited there.
        var vethQdiscs = Tc(_node.Name, hostVeth);
        Assert.Contains("qdisc tbf", vethQdiscs, StringComparison.Ordinal);
        Assert.Contains("rate 8Mbit", vethQdiscs, StringComparison.Ordinal);
        Assert.Contains("qdisc ingress", vethQdiscs, StringComparison.Ordinal);
        Assert.Contains("rate 4Mbit", Tc(_node.Name, ifb.Name), StringComparison.Ordinal);
        // Nothing of it reached the root namespace (its own ifb0/ifb1 are the machine's, untouched).
        Assert.Equal(rootLinks, Net.RootLinks());

        var check = _chain.Check("bw1", podNs, runtimeConfig: RuntimeConfig());
        Assert.True(check.Ok, check.ToString());

        var del = _chain.Del("bw1", podNs, runtimeConfig: RuntimeConfig());
        Assert.True(del.Ok, del.ToString());
        Assert.Equal(["bandwidth", "loom-cni"], del.Steps.Select(s => s.Type));
        Assert.DoesNotContain(_node.Netlink.LinkList(), l => l.Kind == "ifb");
        Assert.Null(_node.Netlink.LinkByName(hostVeth));
        Assert.Null(_pod.Netlink.LinkByName("eth0"));
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir, "bw"), "10.*"));
        Assert.Equal(rootLinks, Net.RootLinks());
    }
}
