namespace Loom.Kubernetes.Tests;

public sealed class RbacTests
{
    [Theory]
    [InlineData("GET", "/api/v1/pods", "", "", "pods", "list")]
    [InlineData("GET", "/api/v1/pods", "watch=1&resourceVersion=5", "", "pods", "watch")]
    [InlineData("GET", "/api/v1/namespaces/default/pods/web", "", "", "pods", "get")]
    [InlineData("PATCH", "/api/v1/nodes/n1/status", "", "", "nodes/status", "patch")]
    [InlineData("GET", "/api/v1/namespaces", "", "", "namespaces", "list")]
    [InlineData("GET", "/api/v1/namespaces/default", "", "", "namespaces", "get")]
    [InlineData("POST", "/apis/loom.io/v1alpha1/loomnodes", "", "loom.io", "loomnodes", "create")]
    [InlineData("GET", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", "watch=1", "discovery.k8s.io", "endpointslices", "watch")]
    public void Requests_map_to_group_resource_and_verb_as_the_API_server_resolves_them(string method, string path, string query, string group, string resource, string verb) =>
        Assert.Equal((group, resource, verb), KubernetesAccess.Classify(method, path, query));

    /// <summary>
    /// Every request a replay server saw in a full run (informers, publisher) is granted by <see cref="KubernetesAccess.Rules"/>,
    /// and every rule is used: the table is exactly what the source does.
    /// </summary>
    [Fact]
    public async Task The_rules_are_exactly_the_calls_the_source_makes()
    {
        await using var server = new ReplayServer();
        await using (var h = new Harness(server).WithFixtures())
        {
            await h.StartAsync();
            await Loom.Core.Store.TypedStoreExtensions.PutAsync(h.Store, Loom.Core.Store.Kinds.Node, new Loom.Core.Model.Node
            {
                Name = "n1", UnderlayInterface = "eth1", UnderlayIp = System.Net.IPAddress.Parse("192.168.50.11"), Ready = true,
            });
            await Harness.EventuallyAsync(() => Task.FromResult(server.Seen("PATCH", "/apis/loom.io/v1alpha1/loomnodes/n1/status").Count > 0), "published");
            await Harness.EventuallyAsync(() => Task.FromResult(server.Requests.Count(r => r.IsWatch) >= 7), "every watch open");
        }

        var used = new HashSet<(string, string, string)>();
        foreach (var r in ReplayServer.Everything.Concat(server.Requests))
        {
            var c = KubernetesAccess.Classify(r.Method, r.Path, r.Query);
            Assert.NotNull(c);
            var (group, resource, verb) = c.Value;
            Assert.True(KubernetesAccess.Allows(group, resource, verb), $"{r.Method} {r.Path}?{r.Query} needs {verb} on {resource} ({group}), not in KubernetesAccess.Rules");
            used.Add((group, resource, verb));
        }

        // The contract grants a few verbs the source does not use today (kubectl-style get/update of its own objects, as
        // Cilium's role does); they are named here so a new call or a dropped one shows up as a difference.
        var unused = KubernetesAccess.Rules.SelectMany(r => r.Verbs.Select(v => $"{v} {r.Resource}")).Where(x => !used.Any(u => $"{u.Item3} {u.Item2}" == x)).Order();
        Assert.Equal(["get loomnodes/status", "get nodes", "patch loomnodes", "update loomnodes", "update loomnodes/status"], unused);
    }
}
