using System.Net;
using Loom.Core.Model;
using Loom.Core.Validation;

namespace Loom.Core.Tests.Validation;

/// <summary>What the API server checks for NodePort and LoadBalancer Services, external IPs and traffic policies.</summary>
public sealed class ServiceExternalValidationTests
{
    private static Service Web(ServiceType type, params ServicePort[] ports) => new()
    {
        Namespace = "default",
        Name = "webpod",
        ClusterIp = IPAddress.Parse("10.96.0.100"),
        Type = type,
        Ports = ports.Length == 0 ? [new ServicePort(null, Protocol.Tcp, 80, 8080, 31234)] : ports,
        Selector = new Dictionary<string, string> { ["app"] = "web" },
    };

    private static List<string> Errors(Service s) => ServiceValidation.Validate(s).Select(e => e.ToString()).ToList();

    [Fact]
    public void NodePort_and_LoadBalancer_services_with_node_ports_are_valid()
    {
        Assert.Empty(Errors(Web(ServiceType.NodePort)));
        Assert.Empty(Errors(Web(ServiceType.LoadBalancer)));
        Assert.Empty(Errors(Web(ServiceType.LoadBalancer) with { ExternalTrafficPolicy = TrafficPolicy.Local, HealthCheckNodePort = 32000 }));
        Assert.Empty(Errors(Web(ServiceType.NodePort) with { ExternalTrafficPolicy = TrafficPolicy.Local, InternalTrafficPolicy = TrafficPolicy.Local }));
        // A node port outside 30000-32767 is the allocator's to refuse, not the model's.
        Assert.Empty(Errors(Web(ServiceType.NodePort, new ServicePort(null, Protocol.Tcp, 80, 80, 8080))));
    }

    [Fact]
    public void An_unknown_type_is_unsupported_naming_the_supported_ones() =>
        Assert.Contains("spec.type: Unsupported value: \"7\": supported values: \"ClusterIP\", \"LoadBalancer\", \"NodePort\"", Errors(Web((ServiceType)7)));

    [Fact]
    public void A_node_port_on_a_ClusterIP_service_is_forbidden_for_each_port()
    {
        var errors = Errors(Web(ServiceType.ClusterIP, new ServicePort("a", Protocol.Tcp, 80, 80, 31000), new ServicePort("b", Protocol.Tcp, 81, 81, 31001)));
        Assert.Equal(
            ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
             "spec.ports[1].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
            errors);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(65536)]
    public void A_node_port_is_1_to_65535(int nodePort) =>
        Assert.Contains($"spec.ports[0].nodePort: Invalid value: {nodePort}: must be between 1 and 65535, inclusive",
            Errors(Web(ServiceType.NodePort, new ServicePort(null, Protocol.Tcp, 80, 80, nodePort))));

    [Fact]
    public void A_node_port_is_unique_per_protocol_and_shared_by_tcp_and_udp()
    {
        var errors = Errors(Web(ServiceType.NodePort, new ServicePort("a", Protocol.Tcp, 80, 80, 31000), new ServicePort("b", Protocol.Tcp, 81, 81, 31000)));
        Assert.Equal(["spec.ports[1].nodePort: Duplicate value: 31000"], errors);
        Assert.Empty(Errors(Web(ServiceType.NodePort, new ServicePort("dns", Protocol.Udp, 53, 53, 30053), new ServicePort("dns-tcp", Protocol.Tcp, 53, 53, 30053))));
    }

    [Theory]
    [InlineData("0.0.0.0", "may not be unspecified (0.0.0.0)")]
    [InlineData("127.0.0.5", "may not be in the loopback range (127.0.0.0/8, ::1/128)")]
    [InlineData("169.254.169.254", "may not be in the link-local range (169.254.0.0/16, fe80::/10)")]
    [InlineData("224.0.0.1", "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")]
    [InlineData("239.1.2.3", "may not be a multicast or reserved address (224.0.0.0/3): Loom cannot serve it")]
    [InlineData("255.255.255.255", "may not be a multicast or reserved address (224.0.0.0/3): Loom cannot serve it")]
    [InlineData("fd00::1", "must be an IPv4 address: Loom's Services are IPv4")]
    public void External_ips_may_not_be_special_addresses(string ip, string detail)
    {
        var svc = Web(ServiceType.ClusterIP, new ServicePort(null, Protocol.Tcp, 80, 80)) with { ExternalIps = [IPAddress.Parse("192.168.10.50"), IPAddress.Parse(ip)] };
        Assert.Equal([$"spec.externalIPs[1]: Invalid value: \"{ip}\": {detail}"], Errors(svc));
    }

    [Fact]
    public void External_traffic_policy_Local_needs_an_externally_accessible_service()
    {
        var clusterIp = Web(ServiceType.ClusterIP, new ServicePort(null, Protocol.Tcp, 80, 80)) with { ExternalTrafficPolicy = TrafficPolicy.Local };
        Assert.Equal(["spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set for externally-accessible services"], Errors(clusterIp));
        // External IPs make a ClusterIP Service externally accessible.
        Assert.Empty(Errors(clusterIp with { ExternalIps = [IPAddress.Parse("192.168.10.50")] }));
        Assert.Empty(Errors(Web(ServiceType.NodePort) with { ExternalTrafficPolicy = TrafficPolicy.Local }));
    }

    [Fact]
    public void Unknown_traffic_policies_are_unsupported()
    {
        var errors = Errors(Web(ServiceType.NodePort) with { ExternalTrafficPolicy = (TrafficPolicy)5, InternalTrafficPolicy = (TrafficPolicy)6 });
        Assert.Equal(
            ["spec.externalTrafficPolicy: Unsupported value: \"5\": supported values: \"Cluster\", \"Local\"",
             "spec.internalTrafficPolicy: Unsupported value: \"6\": supported values: \"Cluster\", \"Local\""],
            errors);
    }

    [Fact]
    public void Internal_traffic_policy_Local_is_valid_on_a_ClusterIP_service() =>
        Assert.Empty(Errors(Web(ServiceType.ClusterIP, new ServicePort(null, Protocol.Tcp, 80, 80)) with { InternalTrafficPolicy = TrafficPolicy.Local }));

    [Theory]
    [InlineData(ServiceType.NodePort, TrafficPolicy.Local)]
    [InlineData(ServiceType.LoadBalancer, TrafficPolicy.Cluster)]
    public void A_health_check_port_is_only_for_LoadBalancer_with_Local(ServiceType type, TrafficPolicy policy) =>
        Assert.Equal(["spec.healthCheckNodePort: Invalid value: 32000: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"],
            Errors(Web(type) with { ExternalTrafficPolicy = policy, HealthCheckNodePort = 32000 }));

    [Fact]
    public void A_LoadBalancer_with_Local_may_leave_its_health_check_port_to_the_allocator_but_not_give_a_bad_one()
    {
        var lb = Web(ServiceType.LoadBalancer) with { ExternalTrafficPolicy = TrafficPolicy.Local };
        Assert.Empty(Errors(lb));
        Assert.Equal(["spec.healthCheckNodePort: Invalid value: 70000: must be between 1 and 65535, inclusive"], Errors(lb with { HealthCheckNodePort = 70000 }));
    }
}
