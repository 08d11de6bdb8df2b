using k8s.Models;

namespace Loom.Deploy.Tests;

/// <summary>The ClusterRole grants exactly the API calls the agent makes: nothing missing, nothing extra.</summary>
public class RbacTests
{
    // The calls as the contract states them. tests/Loom.Kubernetes.Tests (ClusterRoleTests) compares rbac.yaml with
    // KubernetesAccess.Rules, the table the source itself is checked against: this project cannot reference
    // Loom.Kubernetes (its KubernetesClient.Aot models clash with the JIT client's used here).
    private static readonly (string Group, string Resource, string[] Verbs)[] Calls =
    [
        ("", "nodes", ["get", "list", "watch", "patch"]),
        ("", "nodes/status", ["patch"]),
        ("", "pods", ["list", "watch"]),
        ("", "services", ["list", "watch"]),
        ("", "namespaces", ["list", "watch"]),
        ("discovery.k8s.io", "endpointslices", ["list", "watch"]),
        ("networking.k8s.io", "networkpolicies", ["list", "watch"]),
        ("loom.io", "loomnodes", ["get", "list", "watch", "create", "update", "patch"]),
        ("loom.io", "loomnodes/status", ["get", "update", "patch"]),
    ];

    [Fact]
    public void The_cluster_role_grants_exactly_the_calls_the_agent_makes()
    {
        var role = Repo.Single<V1ClusterRole>(Repo.ParseFile("rbac.yaml"));
        Assert.Equal("loom-agent", role.Metadata.Name);
        Assert.Equal(Expand(Calls), Expand(Granted(role)));
    }

    [Fact]
    public void Rules_use_no_wildcards_names_or_non_resource_urls()
    {
        var role = Repo.Single<V1ClusterRole>(Repo.ParseFile("rbac.yaml"));
        Assert.Null(role.AggregationRule);
        Assert.All(role.Rules, r =>
        {
            Assert.DoesNotContain("*", r.ApiGroups);
            Assert.DoesNotContain("*", r.Resources);
            Assert.DoesNotContain("*", r.Verbs);
            Assert.True(r.ResourceNames is null or { Count: 0 });
            Assert.True(r.NonResourceURLs is null or { Count: 0 });
        });
    }

    [Fact]
    public void The_binding_gives_the_role_to_the_agents_service_account()
    {
        var objects = Repo.ParseFile("rbac.yaml");
        var account = Repo.Single<V1ServiceAccount>(objects);
        var binding = Repo.Single<V1ClusterRoleBinding>(objects);
        var role = Repo.Single<V1ClusterRole>(objects);
        Assert.Equal(("loom-agent", "loom-system"), (account.Metadata.Name, account.Metadata.NamespaceProperty));
        Assert.Equal(("rbac.authorization.k8s.io", "ClusterRole", role.Metadata.Name), (binding.RoleRef.ApiGroup, binding.RoleRef.Kind, binding.RoleRef.Name));
        var subject = Assert.Single(binding.Subjects);
        Assert.Equal(("ServiceAccount", account.Metadata.Name, account.Metadata.NamespaceProperty), (subject.Kind, subject.Name, subject.NamespaceProperty));

        var daemonSet = Repo.Single<V1DaemonSet>(Repo.ParseFile("daemonset.yaml"));
        Assert.Equal(account.Metadata.Name, daemonSet.Spec.Template.Spec.ServiceAccountName);
        Assert.Equal(account.Metadata.NamespaceProperty, daemonSet.Metadata.NamespaceProperty);
    }

    private static IEnumerable<(string, string, string[])> Granted(V1ClusterRole role) =>
        role.Rules.SelectMany(r => r.ApiGroups.SelectMany(g => r.Resources.Select(res => (g, res, r.Verbs.ToArray()))));

    /// <summary>One (group, resource, verb) per grant, sorted: rules may be split or merged differently and still equal.</summary>
    private static List<string> Expand(IEnumerable<(string Group, string Resource, string[] Verbs)> rules) =>
        [.. rules.SelectMany(r => r.Verbs.Select(v => $"{r.Group}/{r.Resource}:{v}")).Distinct().Order(StringComparer.Ordinal)];
}
