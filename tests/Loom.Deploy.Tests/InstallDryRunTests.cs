using k8s.Models;

namespace Loom.Deploy.Tests;

/// <summary><c>loom install kubernetes --dry-run</c>, run as built (out/bin/loom), its output parsed like the files.</summary>
public sealed class InstallDryRunTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-deploy-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Without_options_it_prints_every_file_of_deploy_kubernetes_unchanged()
    {
        var (code, stdout, stderr) = Repo.RunLoom("install", "kubernetes", "--dry-run");
        Assert.True(code == 0, stderr);
        var printed = Repo.Parse(stdout);
        var files = Repo.AllFiles();
        Assert.Equal(files.Count, printed.Count);
        // The same objects, in apply order: the namespace first, the DaemonSet last.
        Assert.IsType<V1Namespace>(printed[0]);
        Assert.IsType<V1DaemonSet>(printed[^1]);
        Assert.Equal(files.Select(k8s.KubernetesYaml.Serialize).Order(StringComparer.Ordinal), printed.Select(k8s.KubernetesYaml.Serialize).Order(StringComparer.Ordinal));
        foreach (var file in Repo.ManifestFiles())
        {
            Assert.Contains($"# Source: deploy/kubernetes/{file}\n", stdout, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void The_cluster_file_given_goes_into_the_config_map_verbatim()
    {
        var cluster = File.ReadAllText(Path.Combine(Repo.Root, "examples", "cluster", "cilium.yaml"));
        var path = Write("cluster.yaml", cluster);
        var (code, stdout, stderr) = Repo.RunLoom("install", "kubernetes", "--dry-run", "--cluster", path);
        Assert.True(code == 0, stderr);
        var map = Repo.Single<V1ConfigMap>(Repo.Parse(stdout));
        Assert.Equal(cluster.TrimEnd('\n') + "\n", map.Data["cluster.yaml"]);
        Assert.Equal(Repo.Single<V1ConfigMap>(Repo.ParseFile("configmap.yaml")).Data["agent.json"], map.Data["agent.json"]);
    }

    [Fact]
    public void A_cluster_file_that_starts_indented_still_round_trips()
    {
        // A YAML document may be indented as a whole; the block scalar then needs its indentation stated.
        var flannel = File.ReadAllLines(Path.Combine(Repo.Root, "examples", "cluster", "flannel.yaml"));
        var cluster = string.Concat(flannel.Select(l => l.Length == 0 ? "\n" : "  " + l + "\n")) + "\n  # the end\n";
        var (code, stdout, stderr) = Repo.RunLoom("install", "kubernetes", "--dry-run", "--cluster", Write("indented.yaml", cluster));
        Assert.True(code == 0, stderr);
        Assert.Equal(cluster, Repo.Single<V1ConfigMap>(Repo.Parse(stdout)).Data["cluster.yaml"]);
    }

    [Fact]
    public void A_bad_cluster_file_is_refused_with_its_error_and_nothing_printed()
    {
        var path = Write("bad.yaml", "networks:\n  - name: flannel\n    podCIDR: 10.244.0.0/33\n    colour: blue\n");
        var (code, stdout, stderr) = Repo.RunLoom("install", "kubernetes", "--dry-run", "--cluster", path);
        Assert.NotEqual(0, code);
        Assert.Equal("", stdout);
        Assert.Contains(path, stderr, StringComparison.Ordinal);
        Assert.Contains("podCIDR", stderr, StringComparison.Ordinal);
        Assert.Contains("colour", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_cluster_file_is_refused_with_nothing_printed()
    {
        var (code, stdout, stderr) = Repo.RunLoom("install", "kubernetes", "--dry-run", "--cluster", Path.Combine(_dir, "absent.yaml"));
        Assert.NotEqual(0, code);
        Assert.Equal("", stdout);
        Assert.Contains("absent.yaml", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void The_image_and_interface_given_replace_the_defaults()
    {
        var (code, stdout, stderr) = Repo.RunLoom("install", "kubernetes", "--dry-run", "--image", "registry.example:5000/loom/agent:v0.1@sha256:0123abcd", "--iface", "enp1s0.100");
        Assert.True(code == 0, stderr);
        var objects = Repo.Parse(stdout);
        var pod = Repo.Single<V1DaemonSet>(objects).Spec.Template.Spec;
        Assert.All(pod.Containers.Concat(pod.InitContainers), c => Assert.Equal("registry.example:5000/loom/agent:v0.1@sha256:0123abcd", c.Image));
        Assert.Equal("enp1s0.100", ManifestTests.AgentJson(Repo.Single<V1ConfigMap>(objects)).GetProperty("iface").GetString());
    }

    [Theory]
    [InlineData("--image", "loom:latest\n  hostPID: true")]
    [InlineData("--image", "")]
    [InlineData("--iface", "eth0\", \"source\": \"store")]
    [InlineData("--iface", "a-name-longer-than-15")]
    public void An_image_or_interface_that_could_break_the_yaml_is_refused(string option, string value)
    {
        var (code, stdout, stderr) = Repo.RunLoom("install", "kubernetes", "--dry-run", option, value);
        Assert.NotEqual(0, code);
        Assert.Equal("", stdout);
        Assert.Contains(option, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Output_writes_the_files_as_deploy_kubernetes_lays_them_out()
    {
        var (code, _, stderr) = Repo.RunLoom("install", "kubernetes", "--dry-run", "--output", _dir);
        Assert.True(code == 0, stderr);
        foreach (var file in Repo.ManifestFiles())
        {
            Assert.Equal(File.ReadAllText(Path.Combine(Repo.ManifestDir, file)), File.ReadAllText(Path.Combine(_dir, file)));
        }
    }

    [Fact]
    public void Without_dry_run_it_says_applying_is_not_implemented()
    {
        var (code, stdout, stderr) = Repo.RunLoom("install", "kubernetes");
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Contains("not implemented", stderr, StringComparison.Ordinal);
        Assert.Contains("--dry-run", stderr, StringComparison.Ordinal);
    }

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }
}
