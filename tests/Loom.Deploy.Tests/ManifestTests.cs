using System.Text.Json;
using k8s.Models;
using Loom.Agent;
using Loom.Core.Networks;

namespace Loom.Deploy.Tests;

/// <summary>deploy/kubernetes parsed with the Kubernetes client's models, and the facts the agent depends on.</summary>
public class ManifestTests
{
    private static V1DaemonSet DaemonSet => Repo.Single<V1DaemonSet>(Repo.ParseFile("daemonset.yaml"));

    private static V1Container Agent => Assert.Single(DaemonSet.Spec.Template.Spec.Containers);

    [Fact]
    public void Every_file_parses_into_typed_objects_of_the_expected_kinds()
    {
        var kinds = Repo.AllFiles().Select(o => o.GetType().Name).Order(StringComparer.Ordinal);
        Assert.Equal(
            ["V1ClusterRole", "V1ClusterRoleBinding", "V1ConfigMap", "V1CustomResourceDefinition", "V1DaemonSet", "V1Namespace", "V1ServiceAccount"],
            kinds);
    }

    [Fact]
    public void Strict_parsing_refuses_a_misspelt_field()
    {
        // The check above is only worth something if a typo fails it.
        var yaml = File.ReadAllText(Path.Combine(Repo.ManifestDir, "daemonset.yaml")).Replace("mountPropagation:", "mountPropogation:", StringComparison.Ordinal);
        Assert.ThrowsAny<Exception>(() => Repo.Parse(yaml));
    }

    [Fact]
    public void Namespaced_objects_live_in_loom_system()
    {
        var ns = Repo.Single<V1Namespace>(Repo.AllFiles());
        Assert.Equal("loom-system", ns.Metadata.Name);
        Assert.Equal("privileged", ns.Metadata.Labels["pod-security.kubernetes.io/enforce"]);
        var namespaced = Repo.AllFiles().OfType<IMetadata<V1ObjectMeta>>()
            .Where(o => o is V1ServiceAccount or V1ConfigMap or V1DaemonSet).ToList();
        Assert.Equal(3, namespaced.Count);
        Assert.All(namespaced, o => Assert.Equal("loom-system", o.Metadata.NamespaceProperty));
    }

    [Fact]
    public void The_daemon_set_runs_on_the_hosts_network_on_every_node()
    {
        var ds = DaemonSet;
        var pod = ds.Spec.Template.Spec;
        Assert.Equal("loom-agent", ds.Metadata.Name);
        Assert.True(pod.HostNetwork);
        Assert.Equal("ClusterFirstWithHostNet", pod.DnsPolicy);
        Assert.Equal("system-node-critical", pod.PriorityClassName);
        var toleration = Assert.Single(pod.Tolerations);
        Assert.Equal("Exists", toleration.OperatorProperty);
        Assert.Null(toleration.Key); // no key: every taint, whatever its effect
        Assert.Null(toleration.Effect);
        Assert.Equal("RollingUpdate", ds.Spec.UpdateStrategy.Type);
        Assert.Equal("1", ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable.Value);
        Assert.Equal(ds.Spec.Selector.MatchLabels, ds.Spec.Template.Metadata.Labels.Where(l => ds.Spec.Selector.MatchLabels.ContainsKey(l.Key)));
        Assert.True(Agent.SecurityContext.Privileged);
        Assert.Equal("100m", Agent.Resources.Requests["cpu"].ToString());
        Assert.Equal("128Mi", Agent.Resources.Requests["memory"].ToString());
        var nodeName = Assert.Single(Agent.Env, e => e.Name == "NODE_NAME");
        Assert.Equal("spec.nodeName", nodeName.ValueFrom.FieldRef.FieldPath);
        Assert.Contains("--node=$(NODE_NAME)", Agent.Command);
    }

    [Theory]
    [InlineData("/sys/fs/bpf", "Bidirectional", false)]
    [InlineData("/sys/fs/cgroup", null, false)]
    [InlineData("/run/netns", "HostToContainer", false)]
    [InlineData("/run/loom", null, false)]
    [InlineData("/etc/cni/net.d", null, false)]
    [InlineData("/opt/cni/bin", null, true)]
    [InlineData("/var/lib/cni", null, false)]
    [InlineData("/lib/modules", null, true)]
    [InlineData("/run/xtables.lock", null, false)]
    public void The_agent_mounts_the_host_path_at_the_same_place(string path, string? propagation, bool readOnly)
    {
        var mount = Assert.Single(Agent.VolumeMounts, m => m.MountPath == path);
        var volume = Assert.Single(DaemonSet.Spec.Template.Spec.Volumes, v => v.Name == mount.Name);
        Assert.Equal(path, volume.HostPath.Path);
        Assert.Equal(propagation, mount.MountPropagation);
        Assert.Equal(readOnly, mount.ReadOnlyProperty ?? false);
    }

    [Fact]
    public void The_agents_default_paths_are_on_host_mounts()
    {
        // The places the agent and loom-cni share (AgentConfig's defaults, which agent.json keeps) must be the host's.
        var config = new AgentConfig();
        string[] paths = [config.SocketPath, config.SubnetFile, config.CniConfDir, config.IpamDataDir, config.BpfPinDir];
        var hostMounts = Agent.VolumeMounts.Where(m => DaemonSet.Spec.Template.Spec.Volumes.Single(v => v.Name == m.Name).HostPath is not null).ToList();
        Assert.All(paths, p => Assert.Contains(hostMounts, m => p == m.MountPath || p.StartsWith(m.MountPath + "/", StringComparison.Ordinal)));
    }

    [Fact]
    public void Every_mount_names_a_volume_and_every_volume_is_mounted()
    {
        var pod = DaemonSet.Spec.Template.Spec;
        var mounted = pod.Containers.Concat(pod.InitContainers).SelectMany(c => c.VolumeMounts).Select(m => m.Name).ToHashSet();
        Assert.Equal(pod.Volumes.Select(v => v.Name).Order(StringComparer.Ordinal), mounted.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Probes_hit_the_health_endpoint_on_the_port_agent_json_listens_on()
    {
        var metricsPort = new Uri("http://" + AgentJson().GetProperty("metricsAddress").GetString()).Port;
        foreach (var (probe, path) in new[] { (Agent.LivenessProbe, "/healthz"), (Agent.ReadinessProbe, "/readyz"), (Agent.StartupProbe, "/healthz") })
        {
            Assert.NotNull(probe?.HttpGet);
            Assert.Equal(path, probe.HttpGet.Path);
            var port = Assert.Single(Agent.Ports, p => p.Name == probe.HttpGet.Port.Value || p.ContainerPort.ToString(System.Globalization.CultureInfo.InvariantCulture) == probe.HttpGet.Port.Value);
            Assert.Equal(metricsPort, port.ContainerPort);
        }
    }

    [Fact]
    public void The_init_container_installs_loom_cni_into_the_hosts_cni_bin()
    {
        var pod = DaemonSet.Spec.Template.Spec;
        var init = Assert.Single(pod.InitContainers);
        Assert.Equal(Agent.Image, init.Image);
        var mount = Assert.Single(init.VolumeMounts);
        Assert.Equal("/opt/cni/bin", pod.Volumes.Single(v => v.Name == mount.Name).HostPath.Path);
        var script = string.Join(' ', init.Command.Concat(init.Args ?? []));
        Assert.Contains($"{mount.MountPath}/loom-cni", script, StringComparison.Ordinal);
        // From where the image puts it (Containerfile).
        var source = script.Split(' ').First(w => w.EndsWith("/loom-cni", StringComparison.Ordinal) && !w.StartsWith(mount.MountPath, StringComparison.Ordinal));
        Assert.Contains($" {source}", Containerfile(), StringComparison.Ordinal);
    }

    [Fact]
    public void The_agents_command_and_bpf_directory_are_where_the_image_puts_them()
    {
        var containerfile = Containerfile();
        Assert.Contains($" {Agent.Command[0]}", containerfile, StringComparison.Ordinal);
        var bpfDir = Assert.Single(Agent.Env, e => e.Name == "LOOM_BPF_DIR").Value;
        Assert.Contains($" {bpfDir}/", containerfile, StringComparison.Ordinal);
        Assert.Contains("--config=/etc/loom/agent.json", Agent.Command);
        var config = Assert.Single(Agent.VolumeMounts, m => m.Name == "config");
        Assert.Equal("/etc/loom", config.MountPath);
        Assert.Equal("loom-config", DaemonSet.Spec.Template.Spec.Volumes.Single(v => v.Name == "config").ConfigMap.Name);
    }

    [Fact]
    public void The_image_carries_every_bpf_object_the_agent_loads()
    {
        var programs = Directory.EnumerateFiles(Path.Combine(Repo.Root, "bpf"), "*.c").Select(Path.GetFileNameWithoutExtension)
            .Where(n => !n!.StartsWith("test_", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(programs);
        Assert.All(programs, n => Assert.Contains($"out/bpf/{n}.o", Containerfile(), StringComparison.Ordinal));
    }

    [Fact]
    public void The_config_map_holds_a_valid_cluster_file_and_a_kubernetes_agent_config()
    {
        var map = Repo.Single<V1ConfigMap>(Repo.ParseFile("configmap.yaml"));
        Assert.Equal("loom-config", map.Metadata.Name);
        Assert.Equal(["agent.json", "cluster.yaml"], map.Data.Keys.Order(StringComparer.Ordinal));
        var cluster = ClusterFileParser.Parse(map.Data["cluster.yaml"]);
        Assert.Single(cluster.Networks);
        var agent = AgentJson();
        Assert.Equal("kubernetes", agent.GetProperty("source").GetString());
        Assert.Equal("/etc/loom/cluster.yaml", agent.GetProperty("clusterFile").GetString());
        // The agent reads it as it will in the pod: unknown fields are refused there.
        var parsed = AgentConfig.Parse(System.Text.Encoding.UTF8.GetBytes(map.Data["agent.json"]), "configmap.yaml agent.json");
        Assert.Equal("kubernetes", parsed.Source);
        Assert.Equal("/etc/loom/cluster.yaml", parsed.ClusterFile);
    }

    [Fact]
    public void The_crd_defines_cluster_scoped_loom_nodes_with_a_status_subresource()
    {
        var crd = Repo.Single<V1CustomResourceDefinition>(Repo.ParseFile("crds/loomnodes.loom.io.yaml"));
        Assert.Equal("loomnodes.loom.io", crd.Metadata.Name);
        Assert.Equal("loom.io", crd.Spec.Group);
        Assert.Equal("Cluster", crd.Spec.Scope);
        Assert.Equal(("LoomNode", "loomnodes", "loomnode"), (crd.Spec.Names.Kind, crd.Spec.Names.Plural, crd.Spec.Names.Singular));
        Assert.Equal(["ln"], crd.Spec.Names.ShortNames);
        var version = Assert.Single(crd.Spec.Versions);
        Assert.Equal("v1alpha1", version.Name);
        Assert.True(version.Served && version.Storage);
        Assert.NotNull(version.Subresources.Status);
        Assert.Equal(["Ready", "UnderlayIp", "PodCidrs", "Age"], version.AdditionalPrinterColumns.Select(c => c.Name));

        var status = version.Schema.OpenAPIV3Schema.Properties["status"];
        Assert.Equal("object", status.Type);
        Assert.Equal(("array", "string"), (status.Properties["podCidrs"].Type, ItemType(status.Properties["podCidrs"])));
        Assert.Equal("string", status.Properties["underlayInterface"].Type);
        Assert.Equal("string", status.Properties["underlayIp"].Type);
        Assert.Equal("string", status.Properties["vtepMac"].Type);
        Assert.Equal("boolean", status.Properties["ready"].Type);
        Assert.Equal(("string", "date-time"), (status.Properties["heartbeat"].Type, status.Properties["heartbeat"].Format));
        Assert.True(status.Properties["networks"].XKubernetesPreserveUnknownFields);
        Assert.Equal("object", version.Schema.OpenAPIV3Schema.Properties["spec"].Type);
    }

    [Fact]
    public void The_crds_schema_is_structural()
    {
        // Structural (apiextensions.k8s.io/v1 refuses others): every node states its type, except below
        // x-kubernetes-preserve-unknown-fields, and every printer column points at a field of the schema.
        var version = Repo.Single<V1CustomResourceDefinition>(Repo.ParseFile("crds/loomnodes.loom.io.yaml")).Spec.Versions[0];
        AssertTyped(version.Schema.OpenAPIV3Schema, "");
        foreach (var column in version.AdditionalPrinterColumns.Where(c => c.JsonPath.StartsWith(".status.", StringComparison.Ordinal)))
        {
            Assert.Contains(column.JsonPath[".status.".Length..], version.Schema.OpenAPIV3Schema.Properties["status"].Properties.Keys);
        }
    }

    private static void AssertTyped(V1JSONSchemaProps schema, string path)
    {
        Assert.False(string.IsNullOrEmpty(schema.Type), $"{path}: no type");
        foreach (var (name, child) in schema.Properties ?? new Dictionary<string, V1JSONSchemaProps>())
        {
            AssertTyped(child, $"{path}.{name}");
        }

        if (ItemSchema(schema) is { } items)
        {
            AssertTyped(items, path + "[]");
        }
    }

    // The model types items as object (a schema or a list of them): YAML leaves it a plain mapping, read it again as a schema.
    private static V1JSONSchemaProps? ItemSchema(V1JSONSchemaProps schema) =>
        schema.Items is null ? null : k8s.KubernetesYaml.Deserialize<V1JSONSchemaProps>(k8s.KubernetesYaml.Serialize(schema.Items), strict: true);

    private static string? ItemType(V1JSONSchemaProps schema) => ItemSchema(schema)?.Type;

    internal static JsonElement AgentJson(V1ConfigMap? map = null)
    {
        map ??= Repo.Single<V1ConfigMap>(Repo.ParseFile("configmap.yaml"));
        using var doc = JsonDocument.Parse(map.Data["agent.json"], new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip });
        return doc.RootElement.Clone();
    }

    private static string Containerfile() => File.ReadAllText(Path.Combine(Repo.ManifestDir, "Containerfile"));
}
