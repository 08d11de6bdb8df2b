using System.Net;
using Loom.Core.Model;
using Loom.Core.Validation;

namespace Loom.Core.Tests.Validation;

public sealed class ServiceValidationTests
{
    private const string Injection = "x\"\n-A KUBE-MARK-MASQ -j ACCEPT\n#";

    private static Service Web(params ServicePort[] ports) => new()
    {
        Namespace = "default",
        Name = "webpod",
        ClusterIp = IPAddress.Parse("10.96.0.100"),
        Ports = ports.Length == 0 ? [new ServicePort(null, Protocol.Tcp, 80, 8080)] : ports,
        Selector = new Dictionary<string, string> { ["app"] = "web" },
    };

    private static List<string> Errors(Service s) => ServiceValidation.Validate(s).Select(e => e.ToString()).ToList();

    [Fact]
    public void A_valid_service_has_no_errors()
    {
        Assert.Empty(Errors(Web()));
        Assert.Empty(Errors(Web(new ServicePort("http", Protocol.Tcp, 80, 8080), new ServicePort("dns", Protocol.Udp, 53, 0), new ServicePort("dns-tcp", Protocol.Tcp, 53, 0))));
        Assert.Empty(Errors(Web() with { SessionAffinity = SessionAffinity.ClientIP, SessionAffinityTimeoutSeconds = 86400 }));
    }

    [Fact]
    public void The_injection_port_name_is_refused_naming_the_field_on_one_line()
    {
        var errors = Errors(Web(new ServicePort(Injection, Protocol.Tcp, 80, 80)));
        var e = Assert.Single(errors, e => e.Contains("must contain only alpha-numeric characters", StringComparison.Ordinal));
        Assert.Equal("spec.ports[0].name: Invalid value: \"x\\\"\\n-A KUBE-MARK-MASQ -j ACCEPT\\n#\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)", e);
        Assert.All(errors, m => Assert.DoesNotContain('\n', m));
    }

    [Theory]
    [InlineData(0, "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive")]
    [InlineData(65536, "spec.ports[0].port: Invalid value: 65536: must be between 1 and 65535, inclusive")]
    public void Port_numbers_are_1_to_65535(int port, string expected) =>
        Assert.Contains(expected, Errors(Web(new ServicePort(null, Protocol.Tcp, port, 80))));

    [Fact]
    public void Target_port_is_1_to_65535_or_0_for_the_port_itself()
    {
        Assert.Empty(Errors(Web(new ServicePort(null, Protocol.Tcp, 80, 0))));
        Assert.Contains("spec.ports[0].targetPort: Invalid value: -1: must be between 1 and 65535, inclusive", Errors(Web(new ServicePort(null, Protocol.Tcp, 80, -1))));
        Assert.Contains("spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive", Errors(Web(new ServicePort(null, Protocol.Tcp, 80, 70000))));
    }

    [Fact]
    public void Several_ports_must_be_named_uniquely_with_unique_numbers_per_protocol()
    {
        var errors = Errors(Web(new ServicePort(null, Protocol.Tcp, 80, 80), new ServicePort("a", Protocol.Tcp, 81, 81)));
        Assert.Contains("spec.ports[0].name: Required value: a Service with several ports must name each", errors);
        errors = Errors(Web(new ServicePort("a", Protocol.Tcp, 80, 80), new ServicePort("a", Protocol.Tcp, 81, 81)));
        Assert.Contains("spec.ports[1].name: Duplicate value: \"a\"", errors);
        errors = Errors(Web(new ServicePort("a", Protocol.Tcp, 80, 80), new ServicePort("b", Protocol.Tcp, 80, 81)));
        Assert.Contains("spec.ports[1]: Duplicate value: \"80/TCP\"", errors);
        Assert.Empty(Errors(Web(new ServicePort("a", Protocol.Tcp, 80, 80), new ServicePort("b", Protocol.Udp, 80, 80))));
    }

    [Fact]
    public void No_ports_is_required_value() => Assert.Contains("spec.ports: Required value", Errors(Web() with { Ports = [] }));

    [Fact]
    public void An_unknown_protocol_number_is_unsupported() =>
        Assert.Contains(Errors(Web(new ServicePort(null, (Protocol)7, 80, 80))), e => e.StartsWith("spec.ports[0].protocol: Unsupported value", StringComparison.Ordinal));

    [Fact]
    public void Protocol_text_is_tcp_or_udp_and_sctp_is_refused_by_name()
    {
        var errors = new List<FieldError>();
        Assert.Equal(Protocol.Tcp, ServiceValidation.Protocol(errors, null, "p"));
        Assert.Equal(Protocol.Udp, ServiceValidation.Protocol(errors, "UDP", "p"));
        Assert.Empty(errors);
        Assert.Null(ServiceValidation.Protocol(errors, "SCTP", "spec.ports[0].protocol"));
        Assert.Null(ServiceValidation.Protocol(errors, "tcp", "spec.ports[1].protocol"));
        Assert.Equal(
            ["spec.ports[0].protocol: Unsupported value: \"SCTP\": SCTP is not supported by Loom; supported values: \"TCP\", \"UDP\"",
             "spec.ports[1].protocol: Unsupported value: \"tcp\": supported values: \"TCP\", \"UDP\""],
            errors.Select(e => e.ToString()));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(86401)]
    [InlineData(int.MaxValue)]
    public void Affinity_timeout_is_1_to_86400(int timeout) =>
        Assert.Contains($"spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: {timeout}: must be greater than 0 and less than or equal to 86400",
            Errors(Web() with { SessionAffinity = SessionAffinity.ClientIP, SessionAffinityTimeoutSeconds = timeout }));

    [Theory]
    [InlineData("Web", "default", "metadata.name: Invalid value: \"Web\": a DNS-1035 label")]
    [InlineData("1web", "default", "metadata.name: Invalid value: \"1web\": a DNS-1035 label")]
    [InlineData("web", "Default", "metadata.namespace: Invalid value: \"Default\": a lowercase RFC 1123 label")]
    [InlineData("web", "a.b", "metadata.namespace: Invalid value: \"a.b\": a lowercase RFC 1123 label")]
    [InlineData("", "default", "metadata.name: Required value")]
    public void Names_and_namespaces(string name, string ns, string expected) =>
        Assert.Contains(Errors(Web() with { Name = name, Namespace = ns }), e => e.StartsWith(expected, StringComparison.Ordinal));

    [Fact]
    public void A_long_name_is_refused_and_the_message_stays_short()
    {
        var errors = Errors(Web() with { Name = new string('a', 5000) });
        Assert.Contains(errors, e => e.Contains("must be no more than 63 characters", StringComparison.Ordinal));
        Assert.All(errors, e => Assert.True(e.Length < 1000, e));
    }

    [Theory]
    [InlineData("::1")]
    [InlineData("0.0.0.0")]
    [InlineData("255.255.255.255")]
    public void Cluster_ip_is_an_ipv4_address(string ip) =>
        Assert.Contains(Errors(Web() with { ClusterIp = IPAddress.Parse(ip) }), e => e.StartsWith($"spec.clusterIP: Invalid value: \"{ip}\"", StringComparison.Ordinal));

    [Fact]
    public void Selector_labels_are_validated() =>
        Assert.Contains(Errors(Web() with { Selector = new Dictionary<string, string> { ["app"] = "a\"b" } }),
            e => e.StartsWith("spec.selector: Invalid value: \"a\\\"b\": a valid label must be an empty string", StringComparison.Ordinal));
}
