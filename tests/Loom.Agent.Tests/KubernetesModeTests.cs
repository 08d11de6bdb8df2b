using System.Net;
using System.Net.Sockets;
using Loom.Core.Networks;

namespace Loom.Agent.Tests;

/// <summary>The agent's side of <c>"source": "kubernetes"</c>: its config, the pod CIDR check, the probes' endpoints.</summary>
public sealed class KubernetesModeTests
{
    [Fact]
    public void The_config_names_the_source_the_kubeconfig_and_the_cluster_file()
    {
        var c = AgentConfig.Parse("""{"source": "kubernetes", "kubernetes": {"kubeconfig": "/etc/kubernetes/kubelet.conf"}, "clusterFile": "/etc/loom/cluster.yaml"}"""u8, "test");
        Assert.Equal("kubernetes", c.Source);
        Assert.Equal("/etc/kubernetes/kubelet.conf", c.Kubernetes!.Kubeconfig);
        Assert.Equal("/etc/loom/cluster.yaml", c.ClusterFile);
        Assert.Equal("store", AgentConfig.Parse("{}"u8, "test").Source);
        Assert.Null(AgentConfig.Parse("""{"source": "kubernetes", "kubernetes": {}}"""u8, "test").Kubernetes!.Kubeconfig); // in-cluster
    }

    [Fact]
    public void The_node_name_comes_from_NODE_NAME_in_kubernetes_mode_only()
    {
        static string? Env(string name) => name == "NODE_NAME" ? "worker-3" : null;
        Assert.Equal("worker-3", new AgentConfig { Source = "kubernetes" }.ResolveNode(Env));
        Assert.Equal("n1", new AgentConfig { Source = "kubernetes", Node = "n1" }.ResolveNode(Env));
        Assert.Null(new AgentConfig().ResolveNode(Env));
    }

    [Fact]
    public void A_node_without_spec_podCIDR_is_refused_naming_allocate_node_cidrs()
    {
        var file = ClusterFile.Default();
        var error = AgentHost.PodCidrError("n1", [], file);
        Assert.Contains("--allocate-node-cidrs", error, StringComparison.Ordinal);

        var pool = file.Networks[0].PodCidr;
        var mask = file.Networks[0].NodeMaskSize;
        var block = new IPNetwork(pool.BaseAddress, mask);
        Assert.Null(AgentHost.PodCidrError("n1", [block], file));
        Assert.Contains("--node-cidr-mask-size", AgentHost.PodCidrError("n1", [new IPNetwork(pool.BaseAddress, mask + 1)], file), StringComparison.Ordinal);
        Assert.Contains("--cluster-cidr", AgentHost.PodCidrError("n1", [IPNetwork.Parse("172.31.9.0/24")], file), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Healthz_and_readyz_share_the_metrics_port()
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        var ready = false;
        using var metrics = AgentMetrics.Start($"127.0.0.1:{port}");
        using var health = HealthEndpoints.Start($"127.0.0.1:{port}", () => true, () => ready);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri("/healthz", UriKind.Relative))).StatusCode);
        var notReady = await http.GetAsync(new Uri("/readyz", UriKind.Relative));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady.StatusCode);
        Assert.Contains("not programmed", await notReady.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        ready = true;
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri("/readyz", UriKind.Relative))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri("/metrics", UriKind.Relative))).StatusCode);
    }
}
