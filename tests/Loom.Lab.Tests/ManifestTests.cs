using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Store.Sqlite;

namespace Loom.Lab.Tests;

/// <summary>Kubernetes YAML as the scenario writes it: what is honoured, warned about, refused.</summary>
public sealed class ManifestTests
{
    public static string Example(string name) => File.ReadAllText(ExamplePath(name));

    public static string ExamplePath(string name)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !Directory.Exists(Path.Combine(dir.FullName, "examples", "scenario")))
        {
            dir = dir.Parent;
        }

        return Path.Combine(dir?.FullName ?? throw new InvalidOperationException("examples/scenario not found"), "examples", "scenario", name);
    }

    [Fact]
    public void The_scenario_manifests_parse_without_warnings()
    {
        var set = Manifests.Parse(Example("webpod.yaml") + "\n---\n" + Example("curl-pod.yaml"));
        Assert.Empty(set.Errors);
        Assert.Empty(set.Warnings);
        var d = Assert.IsType<DeploymentManifest>(set.Objects[0]);
        Assert.Equal(("default", "webpod", 2), (d.Namespace, d.Name, d.Replicas));
        Assert.Equal("traefik/whoami", d.Template.Image);
        var term = Assert.Single(d.Template.AntiAffinity);
        Assert.Equal("kubernetes.io/hostname", term.TopologyKey);
        Assert.True(term.Selector.Matches(new Dictionary<string, string> { ["app"] = "webpod" }));
        Assert.False(term.Selector.Matches(new Dictionary<string, string> { ["app"] = "curl" }));
        var s = Assert.IsType<ServiceManifest>(set.Objects[1]);
        Assert.Equal(new ServicePort(null, Protocol.Tcp, 80, 80), Assert.Single(s.Ports));
        Assert.Equal("webpod", s.Selector["app"]);
        Assert.Null(s.ClusterIp);
        var p = Assert.IsType<PodManifest>(set.Objects[2]);
        Assert.Equal(("curl-pod", "k8s-ctr", "alpine/curl"), (p.Name, p.Spec.NodeName, p.Spec.Image));
        Assert.Equal(["sleep", "36000"], p.Spec.Command);
        Assert.Equal(LabImages.Kind.Sleep, LabImages.Classify(p.Spec.Image, p.Spec.Command, p.Spec.Args));
        Assert.Equal(["deployment.apps/webpod", "service/webpod", "pod/curl-pod"], set.Objects.Select(o => o.Display));
    }

    [Fact]
    public void Fields_the_lab_does_not_honour_are_warnings_naming_their_path()
    {
        var yaml = Example("webpod.yaml").Replace("        image: traefik/whoami\n",
            "        image: traefik/whoami\n        resources:\n          limits:\n            cpu: 100m\n        env:\n        - name: X\n          value: y\n", StringComparison.Ordinal)
            .Replace("  replicas: 2\n", "  replicas: 2\n  strategy:\n    type: RollingUpdate\n", StringComparison.Ordinal);
        var set = Manifests.Parse(yaml);
        Assert.Empty(set.Errors);
        Assert.Contains("Deployment/webpod: spec.template.spec.containers[0].resources: not honoured by the lab; ignored", set.Warnings);
        Assert.Contains("Deployment/webpod: spec.template.spec.containers[0].env: not honoured by the lab; ignored", set.Warnings);
        Assert.Contains("Deployment/webpod: spec.strategy: not honoured by the lab; ignored", set.Warnings);
        Assert.Equal(2, set.Objects.Count);
    }

    [Theory]
    [InlineData("image: traefik/whoami", "image: nginx", "Deployment/webpod: spec.template.spec.containers[0].image: Unsupported value: \"nginx\"")]
    [InlineData("    port: 80\n", "    port: 70000\n", "Service/webpod: spec.ports[0].port: Invalid value: 70000")]
    [InlineData("    targetPort: 80\n", "    targetPort: http\n", "Service/webpod: spec.ports[0].targetPort: Unsupported value: \"http\"")]
    [InlineData("  type: ClusterIP\n", "  type: ExternalName\n", "Service/webpod: spec.type: Unsupported value: \"ExternalName\": ExternalName Services are not supported by Loom")]
    [InlineData("  replicas: 2\n", "  replicas: two\n", "Deployment/webpod: spec.replicas: Invalid value: \"two\"")]
    [InlineData("      labels:\n        app: webpod\n    spec:", "      labels:\n        app: other\n    spec:", "Deployment/webpod: spec.template.metadata.labels: Invalid value")]
    [InlineData("                operator: In\n", "                operator: Near\n", "matchExpressions[0].operator: Unsupported value: \"Near\"")]
    [InlineData("kind: Service\n", "kind: Ingress\n", "kind: Unsupported value: \"Ingress\"")]
    [InlineData("  name: webpod\nspec:\n  replicas", "  name: Web_Pod\nspec:\n  replicas", "Deployment/Web_Pod: metadata.name: Invalid value")]
    public void Invalid_objects_are_errors_naming_the_field(string from, string to, string expected)
    {
        var yaml = Example("webpod.yaml");
        Assert.Contains(from, yaml, StringComparison.Ordinal);
        var set = Manifests.Parse(yaml.Replace(from, to, StringComparison.Ordinal));
        Assert.Contains(set.Errors, e => e.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Missing_required_fields_and_bad_yaml_are_errors()
    {
        var set = Manifests.Parse("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n");
        Assert.Contains("Pod/p: spec.containers[0].image: Required value", set.Errors);
        Assert.Contains(Manifests.Parse("apiVersion: v1\nkind: Pod\nspec: {}\n").Errors, e => e.EndsWith("metadata: Required value", StringComparison.Ordinal));
        Assert.Contains(Manifests.Parse("kind: [unclosed\n").Errors, e => e.StartsWith("YAML: line", StringComparison.Ordinal));
        Assert.Contains(Manifests.Parse("apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  clusterIP: 10.0.0.1\n  ports:\n  - port: 80\n").Errors,
            e => e.Contains("spec.clusterIP: Invalid value: \"10.0.0.1\"", StringComparison.Ordinal));
    }

    [Fact]
    public void Template_hash_is_stable_and_changes_with_the_template()
    {
        var d = (DeploymentManifest)Manifests.Parse(Example("webpod.yaml")).Objects[0];
        var h = Lab.TemplateHash(d.Template);
        Assert.Equal(h, Lab.TemplateHash(d.Template with { }));
        Assert.NotEqual(h, Lab.TemplateHash(d.Template with { Args = ["--port", "8080"] }));
        Assert.Matches("^[bcdfghjklmnpqrstvwxz2456789]{6,10}$", h);
    }

    [Fact]
    public async Task An_error_in_any_document_applies_nothing()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"loom-manifest-test-{Environment.ProcessId}-{Guid.NewGuid():N}");
        var state = new LabState
        {
            Prefix = "lmt-", LabDir = dir, Store = "sqlite", StorePath = Path.Combine(dir, "store.db"), UnderlayNetns = "lmt-underlay",
        };
        try
        {
            LabState.Update(state.LabDir, _ => state);
            var bad = Example("webpod.yaml").Replace("image: traefik/whoami", "image: nginx", StringComparison.Ordinal);
            var output = new StringWriter();
            var e = await Assert.ThrowsAsync<LabException>(() => Lab.ApplyAsync(state, bad, output));
            Assert.Contains("nothing applied: 1 error(s)", e.Message, StringComparison.Ordinal);
            Assert.Contains("spec.template.spec.containers[0].image", e.Message, StringComparison.Ordinal);
            var store = await SqliteStore.OpenAsync(state.StorePath!);
            await using (store)
            {
                Assert.Empty((await store.ListAsync(Kinds.Service)).Items);
            }

            var after = Lab.Load(dir)!;
            Assert.Empty(after.Deployments);
            Assert.Empty(after.Pods);
            Assert.Empty(after.Pending);
            Assert.DoesNotContain("created", output.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
