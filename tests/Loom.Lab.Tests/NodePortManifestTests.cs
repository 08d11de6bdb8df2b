using System.Net;
using Loom.Core.Model;

namespace Loom.Lab.Tests;

/// <summary>The lab's YAML for NodePort and LoadBalancer Services, and the API server's errors for what it refuses.</summary>
public sealed class NodePortManifestTests
{
    private const string Head = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector:\n    app: web\n";

    private static ServiceManifest One(string spec)
    {
        var set = Manifests.Parse(Head + spec);
        Assert.Empty(set.Errors);
        Assert.Empty(set.Warnings);
        return Assert.IsType<ServiceManifest>(Assert.Single(set.Objects));
    }

    private static IReadOnlyList<string> Errors(string spec) => Manifests.Parse(Head + spec).Errors;

    [Fact]
    public void A_NodePort_service_reads_its_node_ports_policies_and_external_ips()
    {
        var s = One("""
              type: NodePort
              externalTrafficPolicy: Local
              internalTrafficPolicy: Local
              externalIPs: [192.168.10.50, 192.168.10.51]
              sessionAffinity: ClientIP
              sessionAffinityConfig:
                clientIP:
                  timeoutSeconds: 30
              ports:
              - name: http
                port: 80
                targetPort: 8080
                nodePort: 31234
              - name: dns
                port: 53
                protocol: UDP
            """);
        Assert.Equal(ServiceType.NodePort, s.Type);
        Assert.Equal([new ServicePort("http", Protocol.Tcp, 80, 8080, 31234), new ServicePort("dns", Protocol.Udp, 53, 53)], s.Ports);
        Assert.Equal((TrafficPolicy.Local, TrafficPolicy.Local), (s.ExternalTrafficPolicy, s.InternalTrafficPolicy));
        Assert.Equal([IPAddress.Parse("192.168.10.50"), IPAddress.Parse("192.168.10.51")], s.ExternalIps);
        Assert.Equal((SessionAffinity.ClientIP, 30), (s.SessionAffinity, s.SessionAffinityTimeoutSeconds));
    }

    [Fact]
    public void A_LoadBalancer_with_Local_may_ask_for_its_health_check_port()
    {
        var s = One("  type: LoadBalancer\n  externalTrafficPolicy: Local\n  healthCheckNodePort: 32000\n  ports:\n  - port: 80\n");
        Assert.Equal((ServiceType.LoadBalancer, 32000, 0), (s.Type, s.HealthCheckNodePort, s.Ports[0].NodePort));
        Assert.Equal((TrafficPolicy.Cluster, TrafficPolicy.Cluster), (One("  type: LoadBalancer\n  ports:\n  - port: 80\n").ExternalTrafficPolicy, One("  ports:\n  - port: 80\n").InternalTrafficPolicy));
    }

    [Theory]
    [InlineData("  type: ExternalName\n  externalName: example.com\n", "Service/web: spec.type: Unsupported value: \"ExternalName\": ExternalName Services are not supported by Loom; supported values: \"ClusterIP\", \"LoadBalancer\", \"NodePort\"")]
    [InlineData("  type: Nodeport\n", "Service/web: spec.type: Unsupported value: \"Nodeport\": supported values: \"ClusterIP\", \"LoadBalancer\", \"NodePort\"")]
    [InlineData("  ports:\n  - port: 80\n    nodePort: 31000\n", "Service/web: spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'")]
    [InlineData("  type: NodePort\n  ports:\n  - port: 80\n    nodePort: 70000\n", "Service/web: spec.ports[0].nodePort: Invalid value: 70000: must be between 1 and 65535, inclusive")]
    [InlineData("  type: NodePort\n  ports:\n  - name: a\n    port: 80\n    nodePort: 31000\n  - name: b\n    port: 81\n    nodePort: 31000\n", "Service/web: spec.ports[1].nodePort: Duplicate value: 31000")]
    [InlineData("  externalTrafficPolicy: Local\n", "Service/web: spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set for externally-accessible services")]
    [InlineData("  externalTrafficPolicy: Cluster\n", "Service/web: spec.externalTrafficPolicy: Invalid value: \"Cluster\": may only be set for externally-accessible services")]
    [InlineData("  type: NodePort\n  externalTrafficPolicy: local\n", "Service/web: spec.externalTrafficPolicy: Unsupported value: \"local\": supported values: \"Cluster\", \"Local\"")]
    [InlineData("  internalTrafficPolicy: Node\n", "Service/web: spec.internalTrafficPolicy: Unsupported value: \"Node\": supported values: \"Cluster\", \"Local\"")]
    [InlineData("  externalIPs: [10.5]\n", "Service/web: spec.externalIPs[0]: Invalid value: \"10.5\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")]
    [InlineData("  externalIPs: [192.168.10.50, 127.0.0.1]\n", "Service/web: spec.externalIPs[1]: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)")]
    [InlineData("  type: NodePort\n  healthCheckNodePort: 32000\n", "Service/web: spec.healthCheckNodePort: Invalid value: 32000: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'")]
    public void Invalid_fields_are_the_api_servers_errors(string spec, string expected)
    {
        if (!spec.Contains("ports:", StringComparison.Ordinal))
        {
            spec += "  ports:\n  - port: 80\n";
        }

        Assert.Contains(expected, Errors(spec));
    }

    [Fact]
    public void External_ips_make_a_ClusterIP_service_take_an_external_traffic_policy()
    {
        var s = One("  externalIPs: [192.168.10.50]\n  externalTrafficPolicy: Local\n  ports:\n  - port: 80\n");
        Assert.Equal((ServiceType.ClusterIP, TrafficPolicy.Local), (s.Type, s.ExternalTrafficPolicy));
    }
}
