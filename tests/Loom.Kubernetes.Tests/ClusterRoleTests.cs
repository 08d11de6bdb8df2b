using Loom.Testing;
using YamlDotNet.RepresentationModel;

namespace Loom.Kubernetes.Tests;

/// <summary>
/// deploy/kubernetes/rbac.yaml grants exactly <see cref="KubernetesAccess.Rules"/>, the calls the source makes
/// (<see cref="RbacTests"/> checks those against the replay server's requests). Read as plain YAML: this project uses
/// KubernetesClient.Aot, whose models clash with the JIT client's that tests/Loom.Deploy.Tests parses manifests with.
/// </summary>
public sealed class ClusterRoleTests
{
    [Fact]
    public void The_manifests_cluster_role_grants_exactly_the_rules_the_source_uses()
    {
        var stream = new YamlStream();
        using (var reader = new StreamReader(Path.Combine(RepoPaths.Root, "deploy", "kubernetes", "rbac.yaml")))
        {
            stream.Load(reader);
        }

        var role = stream.Documents.Select(d => (YamlMappingNode)d.RootNode)
            .Single(m => Scalar(m, "kind") == "ClusterRole");
        var granted = new List<string>();
        foreach (var rule in ((YamlSequenceNode)role.Children[new YamlScalarNode("rules")]).Cast<YamlMappingNode>())
        {
            foreach (var group in Scalars(rule, "apiGroups"))
            {
                foreach (var resource in Scalars(rule, "resources"))
                {
                    granted.AddRange(Scalars(rule, "verbs").Select(v => $"{group}/{resource}:{v}"));
                }
            }
        }

        var expected = KubernetesAccess.Rules.SelectMany(r => r.Verbs.Select(v => $"{r.ApiGroup}/{r.Resource}:{v}"));
        Assert.Equal(expected.Distinct().Order(StringComparer.Ordinal), granted.Distinct().Order(StringComparer.Ordinal));
    }

    private static string? Scalar(YamlMappingNode m, string key) =>
        m.Children.TryGetValue(new YamlScalarNode(key), out var v) ? ((YamlScalarNode)v).Value : null;

    private static IEnumerable<string> Scalars(YamlMappingNode m, string key) =>
        ((YamlSequenceNode)m.Children[new YamlScalarNode(key)]).Cast<YamlScalarNode>().Select(s => s.Value ?? "");
}
