using Loom.Core.Store;
using Loom.Store.Sqlite;

namespace Loom.Lab.Tests;

/// <summary>Manifests are validated as the API server validates objects: each invalid field is an error naming it, and nothing is applied.</summary>
public sealed class ManifestValidationTests
{
    private const string Service = """
        apiVersion: v1
        kind: Service
        metadata:
          name: webpod
        spec:
          selector:
            app: webpod
          ports:
          - name: http
            protocol: TCP
            port: 80
            targetPort: 80

        """;

    private static IReadOnlyList<string> Errors(string yaml) => Manifests.Parse(yaml).Errors;

    private static string With(string from, string to)
    {
        Assert.Contains(from, Service, StringComparison.Ordinal);
        return Service.Replace(from, to, StringComparison.Ordinal);
    }

    [Fact]
    public void The_valid_service_has_no_errors() => Assert.Empty(Errors(Service));

    [Fact]
    public void A_port_name_carrying_an_iptables_rule_is_refused_on_one_line()
    {
        var errors = Errors(With("  - name: http\n", "  - name: \"x\\\"\\n-A KUBE-MARK-MASQ -j ACCEPT\\n#\"\n"));
        Assert.Contains("Service/webpod: spec.ports[0].name: Invalid value: \"x\\\"\\n-A KUBE-MARK-MASQ -j ACCEPT\\n#\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)", errors);
        Assert.All(errors, e => Assert.DoesNotContain('\n', e));
    }

    [Theory]
    [InlineData("  - name: http\n", "  - name: http-metrics-port\n", "spec.ports[0].name: Invalid value: \"http-metrics-port\": must be no more than 15 characters")]
    [InlineData("  - name: http\n", "  - name: \"http\\n\"\n", "spec.ports[0].name: Invalid value: \"http\\n\"")]
    [InlineData("  - name: http\n", "  - name: '8080'\n", "spec.ports[0].name: Invalid value: \"8080\": must contain at least one letter (a-z)")]
    [InlineData("    protocol: TCP\n", "    protocol: SCTP\n", "spec.ports[0].protocol: Unsupported value: \"SCTP\": SCTP is not supported by Loom")]
    [InlineData("    port: 80\n", "    port: 0\n", "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive")]
    [InlineData("    targetPort: 80\n", "    targetPort: 0\n", "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive")]
    [InlineData("    targetPort: 80\n", "    targetPort: -8\n", "spec.ports[0].targetPort: Invalid value: -8: must be between 1 and 65535, inclusive")]
    [InlineData("    targetPort: 80\n", "    targetPort: web\n", "spec.ports[0].targetPort: Unsupported value: \"web\": named target ports are not supported")]
    [InlineData("    targetPort: 80\n", "    targetPort: Web_Port\n", "spec.ports[0].targetPort: Invalid value: \"Web_Port\"")]
    [InlineData("  selector:\n", "  clusterIP: 10.96.5\n  selector:\n", "spec.clusterIP: Invalid value: \"10.96.5\": must be an IPv4 address")]
    [InlineData("  selector:\n", "  clusterIP: \"174391301\"\n  selector:\n", "spec.clusterIP: Invalid value: \"174391301\": must be an IPv4 address")]
    [InlineData("  name: webpod\n", "  name: 1webpod\n", "Service/1webpod: metadata.name: Invalid value: \"1webpod\": a DNS-1035 label")]
    [InlineData("  name: webpod\n", "  name: webpod\n  namespace: Prod\n", "metadata.namespace: Invalid value: \"Prod\": a lowercase RFC 1123 label")]
    [InlineData("    app: webpod\n", "    app: \"web pod\"\n", "spec.selector: Invalid value: \"web pod\": a valid label must be an empty string")]
    [InlineData("    app: webpod\n", "    bad/key/x: webpod\n", "spec.selector: Invalid value: \"bad/key/x\": a qualified name")]
    public void Invalid_service_fields_are_refused_naming_the_field(string from, string to, string expected) =>
        Assert.Contains(Errors(With(from, to)), e => e.Contains(expected, StringComparison.Ordinal));

    [Fact]
    public void Port_names_and_numbers_are_unique_and_every_port_is_named()
    {
        var two = With("    targetPort: 80\n", "    targetPort: 80\n  - name: http\n    port: 81\n  - name: metrics\n    port: 80\n  - port: 82\n");
        var errors = Errors(two);
        Assert.Contains("Service/webpod: spec.ports[1].name: Duplicate value: \"http\"", errors);
        Assert.Contains("Service/webpod: spec.ports[2]: Duplicate value: \"80/TCP\"", errors);
        Assert.Contains("Service/webpod: spec.ports[3].name: Required value: a Service with several ports must name each", errors);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(0)]
    [InlineData(86401)]
    public void Affinity_timeout_is_1_to_86400(int timeout) =>
        Assert.Contains(
            $"Service/webpod: spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: {timeout}: must be greater than 0 and less than or equal to 86400",
            Errors(Service + $"  sessionAffinity: ClientIP\n  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: {timeout}\n"));

    [Fact]
    public void Affinity_config_without_client_ip_affinity_is_refused() =>
        Assert.Contains(Errors(Service + "  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: 60\n"),
            e => e.Contains("spec.sessionAffinityConfig: Invalid value: \"clientIP\": must not be set when sessionAffinity is None", StringComparison.Ordinal));

    [Theory]
    [InlineData("  replicas: 2\n", "  replicas: 5000\n", "Deployment/webpod: spec.replicas: Invalid value: 5000: must be between 0 and 1000, inclusive")]
    [InlineData("  replicas: 2\n", "  replicas: -1\n", "Deployment/webpod: spec.replicas: Invalid value: -1: must be between 0 and 1000, inclusive")]
    [InlineData("      app: webpod\n  template:", "      app: \"webpod\\n\"\n  template:", "spec.selector.matchLabels: Invalid value: \"webpod\\n\"")]
    [InlineData("        app: webpod\n    spec:", "        app: webpod\n        \"a b\": c\n    spec:", "spec.template.metadata.labels: Invalid value: \"a b\"")]
    [InlineData("                - webpod\n", "                - \"web pod\"\n", "matchExpressions[0].values[1]: Invalid value: \"web pod\"")]
    [InlineData("operator: In\n", "operator: Equals\n", "labelSelector.matchExpressions[0].operator: Unsupported value: \"Equals\"")]
    [InlineData("operator: In\n", "operator: Exists\n", "labelSelector.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'")]
    [InlineData("topologyKey: \"kubernetes.io/hostname\"", "topologyKey: \"kubernetes.io/host name\"", "topologyKey: Invalid value: \"kubernetes.io/host name\"")]
    public void Invalid_deployment_fields_are_refused_naming_the_field(string from, string to, string expected)
    {
        var yaml = ManifestTests.Example("webpod.yaml");
        Assert.Contains(from, yaml, StringComparison.Ordinal);
        Assert.Contains(Manifests.Parse(yaml.Replace(from, to, StringComparison.Ordinal)).Errors, e => e.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void A_deployment_name_may_be_a_subdomain_but_a_service_name_may_not()
    {
        var yaml = ManifestTests.Example("webpod.yaml").Replace("  name: webpod\nspec:\n  replicas", "  name: web.pod\nspec:\n  replicas", StringComparison.Ordinal);
        Assert.Empty(Manifests.Parse(yaml).Errors);
        Assert.Contains(Errors(With("  name: webpod\n", "  name: web.pod\n")), e => e.StartsWith("Service/web.pod: metadata.name: Invalid value", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_injection_applies_nothing()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"loom-manifest-validation-{Environment.ProcessId}-{Guid.NewGuid():N}");
        var state = new LabState
        {
            Prefix = "lmv-", LabDir = dir, Store = "sqlite", StorePath = Path.Combine(dir, "store.db"), UnderlayNetns = "lmv-underlay",
        };
        try
        {
            LabState.Update(state.LabDir, _ => state);
            var bad = ManifestTests.Example("webpod.yaml").Replace("  - protocol: TCP\n", "  - name: \"x\\\"\\n-A KUBE-MARK-MASQ -j ACCEPT\\n#\"\n    protocol: TCP\n", StringComparison.Ordinal);
            var output = new StringWriter();
            var e = await Assert.ThrowsAsync<LabException>(() => Lab.ApplyAsync(state, bad, output));
            // Too long and not of the IANA alphabet: two errors, both on the name, each on one line.
            Assert.Contains("nothing applied: 2 error(s)", e.Message, StringComparison.Ordinal);
            Assert.Equal(2, e.Message.Split('\n').Count(l => l.Contains("spec.ports[0].name: Invalid value", StringComparison.Ordinal)));
            var store = await SqliteStore.OpenAsync(state.StorePath!);
            await using (store)
            {
                Assert.Empty((await store.ListAsync(Kinds.Service)).Items);
            }

            Assert.Empty(Lab.Load(dir)!.Deployments);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
