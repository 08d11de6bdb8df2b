using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Loom.Core.Model;
using Loom.Core.Store;
using Xunit.Abstractions;

namespace Loom.Lab.Tests.Policy;

/// <summary>
/// The upstream NetworkPolicy e2e model in a lab: namespaces x, y, z (labelled ns=NAME), pods a, b, c in each (a on
/// k8s-w1, b on k8s-w2, c on k8s-ctr), every pod with four agnhost containers serving TCP and UDP on 80 and 81 under
/// upstream's port names (serve-80-tcp ...). Probes are real connections from inside the source pod's namespace.
/// </summary>
public sealed class PolicyLab(LabState state, ITestOutputHelper output)
{
    public static readonly string[] Namespaces = ["x", "y", "z"];

    public static readonly string[] PodNames = ["a", "b", "c"];

    public static readonly Dictionary<string, string> NodeOf = new(StringComparer.Ordinal) { ["a"] = "k8s-w1", ["b"] = "k8s-w2", ["c"] = "k8s-ctr" };

    public static readonly IReadOnlyList<string> AllPods = [.. Namespaces.SelectMany(ns => PodNames.Select(p => ns + "/" + p))];

    public LabState State => state;

    /// <summary>Namespaces and the nine pods, as one manifest.</summary>
    public static string ModelYaml()
    {
        var sb = new StringBuilder();
        foreach (var ns in Namespaces)
        {
            sb.Append(CultureInfo.InvariantCulture, $"""
                apiVersion: v1
                kind: Namespace
                metadata:
                  name: {ns}
                  labels:
                    ns: {ns}
                ---

                """);
            foreach (var pod in PodNames)
            {
                sb.Append(CultureInfo.InvariantCulture, $"""
                    apiVersion: v1
                    kind: Pod
                    metadata:
                      name: {pod}
                      namespace: {ns}
                      labels:
                        pod: {pod}
                    spec:
                      nodeName: {NodeOf[pod]}
                      tolerations:
                      - operator: Exists
                      containers:

                    """);
                foreach (var port in new[] { 80, 81 })
                {
                    foreach (var proto in new[] { "tcp", "udp" })
                    {
                        sb.Append(CultureInfo.InvariantCulture, $"""
                              - name: cont-{port}-{proto}
                                image: registry.k8s.io/e2e-test-images/agnhost:2.53
                                command: ["/agnhost", "serve-hostname", "--{proto}", "--http=false", "--port", "{port}"]
                                ports:
                                - containerPort: {port}
                                  name: serve-{port}-{proto}
                                  protocol: {proto.ToUpperInvariant()}

                            """);
                    }
                }

                sb.Append("---\n");
            }
        }

        return sb.ToString();
    }

    public LabPod Pod(string key)
    {
        state.Refresh();
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        var (ns, name) = (key[..slash], key[(slash + 1)..]);
        return state.Pods.Find(p => p.Namespace == ns && p.Name == name) ?? throw new InvalidOperationException($"no pod {key} in the lab");
    }

    public IPAddress Ip(string key) => Pod(key).Address ?? throw new InvalidOperationException($"pod {key} has no address");

    public Task ApplyAsync(string yaml) => Lab.ApplyAsync(state, yaml, TextWriter.Null);

    public Task DeleteAsync(string yaml) => Lab.DeleteAsync(state, yaml, TextWriter.Null);

    public async Task SetModeAsync(PolicyEnforcementMode mode, string? node = null)
    {
        var store = await Lab.OpenStoreAsync(state);
        await using (store.ConfigureAwait(false))
        {
            if (node is null)
            {
                await store.UpdateAsync(Kinds.ClusterConfig, "cluster", c => c with { PolicyEnforcementMode = mode });
                return;
            }

            var existing = await store.GetAsync(Kinds.NodeConfig, node);
            var updated = (existing?.Value ?? new NodeConfig { Node = node }) with { PolicyEnforcementMode = mode };
            Assert.True((await store.PutAsync(Kinds.NodeConfig, updated, existing?.Revision ?? 0)).Succeeded);
        }
    }

    public async Task ClearNodeModeAsync(string node)
    {
        var store = await Lab.OpenStoreAsync(state);
        await using (store.ConfigureAwait(false))
        {
            if (await store.GetAsync(Kinds.NodeConfig, node) is { } existing)
            {
                await store.PutAsync(Kinds.NodeConfig, existing.Value with { PolicyEnforcementMode = null }, existing.Revision);
            }
        }
    }

    /// <summary>Every (from, to) pair probed at once; a connected TCP/UDP probe must come back with the destination's name.</summary>
    public async Task<Dictionary<(string From, string To), bool>> ProbeAllAsync(int port, ProtocolType protocol, TimeSpan timeout)
    {
        var pods = AllPods.ToDictionary(p => p, p => Pod(p), StringComparer.Ordinal);
        var probes = AllPods.SelectMany(from => AllPods.Select(to => (from, to))).Select(async pair =>
        {
            var (ok, detail) = await PolicyProbe.ConnectAsync(pods[pair.from].Netns, pods[pair.to].Address!, port, protocol, timeout);
            if (ok && detail != pods[pair.to].Name)
            {
                throw new InvalidOperationException($"{pair.from} -> {pair.to}:{port}/{protocol}: answered by '{detail}', not {pods[pair.to].Name}");
            }

            return (pair, ok);
        }).ToList();
        var results = await Task.WhenAll(probes);
        return results.ToDictionary(r => r.pair, r => r.ok);
    }

    /// <summary>
    /// Probes until the matrix equals <paramref name="expected"/> (policy reaches every node within a moment, as on a
    /// cluster; up to <paramref name="within"/>), then asserts it, printing upstream's truth tables on a mismatch.
    /// </summary>
    public async Task ExpectAsync(string @case, Reachability expected, int port = 80, ProtocolType protocol = ProtocolType.Tcp, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(10));
        Dictionary<(string From, string To), bool> got;
        var rounds = 0;
        while (true)
        {
            rounds++;
            got = await ProbeAllAsync(port, protocol, TimeSpan.FromSeconds(1));
            if (got.All(kv => kv.Value == expected[kv.Key.From, kv.Key.To]) || DateTime.UtcNow > deadline)
            {
                break;
            }
        }

        var wrong = got.Where(kv => kv.Value != expected[kv.Key.From, kv.Key.To]).ToList();
        output.WriteLine($"{@case} ({port}/{protocol}): {(wrong.Count == 0 ? "as expected" : $"{wrong.Count} wrong")} after {rounds} round(s)");
        if (wrong.Count > 0)
        {
            Assert.Fail($"{@case} ({port}/{protocol}): {wrong.Count} of {got.Count} probes differ (* marks them)\nexpected:\n"
                        + Reachability.Table(AllPods, (f, t) => expected[f, t])
                        + "observed:\n" + Reachability.Table(AllPods, (f, t) => got[(f, t)], (f, t) => got[(f, t)] != expected[f, t]));
        }
    }
}
