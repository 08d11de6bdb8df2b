using System.Net;
using k8s;
using k8s.Models;
using Loom.Core.Store;

namespace Loom.Kubernetes;

/// <summary>
/// The Kubernetes API as the agent's source of the cluster: informers for Nodes, Pods, Services, EndpointSlices,
/// Namespaces, NetworkPolicies and LoomNodes mirrored, translated to Loom's model, into a node-local store that the
/// agent then runs on unchanged (one revision space, watches, CAS); and the agent's own Node published back.
/// </summary>
public interface IKubernetesSource : IDisposable
{
    /// <summary>The API server's address.</summary>
    Uri Server { get; }

    IReadOnlyList<InformerState> Informers { get; }

    /// <summary>Objects skipped because the model cannot express them, "kind key: why".</summary>
    IReadOnlyList<string> Skipped { get; }

    /// <summary>True once every informer has listed once.</summary>
    bool Synced { get; }

    /// <summary>One line for <c>loom status</c>: the server and each informer's sync state and error.</summary>
    string Describe();

    /// <summary>Runs the informers and the node publisher until cancelled.</summary>
    Task RunAsync(CancellationToken ct);

    /// <summary>Waits for every informer's first list; throws <see cref="KubernetesSyncException"/> with their errors after <paramref name="timeout"/>.</summary>
    Task WaitSyncedAsync(TimeSpan timeout, CancellationToken ct);

    /// <summary>The pod CIDRs the API gives <paramref name="node"/> (spec.podCIDRs), empty if none; after sync.</summary>
    IReadOnlyList<IPNetwork> PodCidrsOf(string node);
}

public static class KubernetesSource
{
    /// <summary>Connects (kubeconfig or service account) and sets up the informers; nothing runs before <see cref="IKubernetesSource.RunAsync"/>.</summary>
    public static IKubernetesSource Create(KubernetesOptions options, IStore local, string node, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(local);
        ArgumentException.ThrowIfNullOrEmpty(node);
        ArgumentNullException.ThrowIfNull(log);
        return new Source(options, ApiConnection.Open(options), local, node, log);
    }

    private sealed class Source : IKubernetesSource
    {
        private readonly KubernetesOptions _options;
        private readonly ApiConnection _api;
        private readonly Sources _sources;
        private readonly StoreMirror _mirror;
        private readonly NodePublisher _publisher;
        private readonly IStore _local;

        public Source(KubernetesOptions options, ApiConnection api, IStore local, string node, TextWriter log)
        {
            _options = options;
            _api = api;
            _local = local;
            var ctx = SourceGenerationContext.Default;
            _sources = new Sources(
                new("nodes", "/api/v1/nodes", api, options, ctx.V1NodeList, ctx.V1Node, l => (l.Items, l.Metadata?.ResourceVersion), o => o.Metadata),
                new("loomnodes", LoomNodeObject.Path, api, options, KubeJsonContext.Default.LoomNodeList, KubeJsonContext.Default.LoomNodeObject,
                    l => (l.Items, l.Metadata?.ResourceVersion), o => new V1ObjectMeta { Name = o.Metadata.Name, ResourceVersion = o.Metadata.ResourceVersion }),
                new("pods", "/api/v1/pods", api, options, ctx.V1PodList, ctx.V1Pod, l => (l.Items, l.Metadata?.ResourceVersion), o => o.Metadata),
                new("endpointslices", "/apis/discovery.k8s.io/v1/endpointslices", api, options, ctx.V1EndpointSliceList, ctx.V1EndpointSlice,
                    l => (l.Items, l.Metadata?.ResourceVersion), o => o.Metadata),
                new("services", "/api/v1/services", api, options, ctx.V1ServiceList, ctx.V1Service, l => (l.Items, l.Metadata?.ResourceVersion), o => o.Metadata),
                new("namespaces", "/api/v1/namespaces", api, options, ctx.V1NamespaceList, ctx.V1Namespace, l => (l.Items, l.Metadata?.ResourceVersion), o => o.Metadata),
                new("networkpolicies", "/apis/networking.k8s.io/v1/networkpolicies", api, options, ctx.V1NetworkPolicyList, ctx.V1NetworkPolicy,
                    l => (l.Items, l.Metadata?.ResourceVersion), o => o.Metadata));
            _mirror = new StoreMirror(local, node, _sources);
            _sources.Nodes.Changed = _mirror.NodesAsync;
            _sources.LoomNodes.Changed = _mirror.NodesAsync;
            _sources.Pods.Changed = _mirror.PodsAsync;
            _sources.Slices.Changed = _mirror.SlicesAsync;
            _sources.Services.Changed = _mirror.ServicesAsync;
            _sources.Namespaces.Changed = _mirror.NamespacesAsync;
            _sources.Policies.Changed = _mirror.PoliciesAsync;
            _publisher = new NodePublisher(api, local, node, log);
        }

        public Uri Server => _api.Server;

        public IReadOnlyList<InformerState> Informers => [.. _sources.All.Select(i => i.State)];

        public IReadOnlyList<string> Skipped => [.. _mirror.Skipped.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}: {kv.Value}")];

        public bool Synced => _sources.All.All(i => i.Synced);

        public string Describe()
        {
            var states = Informers;
            var line = $"kubernetes ({Server.GetLeftPart(UriPartial.Authority)}), synced: "
                       + string.Join(" ", states.Select(s => $"{s.Resource} {(s.Synced ? "✓" : "✗")}"));
            var errors = states.Where(s => s.LastError is not null).Select(s => $"{s.Resource}: {s.LastError}")
                .Concat(_publisher.LastError is { } p ? [$"publishing the node: {p}"] : []).ToList();
            return errors.Count == 0 ? line : line + "; errors: " + string.Join("; ", errors);
        }

        public Task RunAsync(CancellationToken ct) =>
            Task.WhenAll([.. _sources.All.Select(i => i.RunAsync(ct)), _publisher.RunAsync(_options.BackoffFirst, _options.BackoffCap, ct),
                _mirror.FollowLocalEndpointsAsync(ct), CompactAsync(ct)]);

        /// <summary>
        /// The in-memory store keeps every change until compacted: every <see cref="KubernetesOptions.CompactInterval"/>
        /// it drops the history older than the previous tick (a watcher that far behind re-lists, as on etcd).
        /// </summary>
        private async Task CompactAsync(CancellationToken ct)
        {
            long previous = 0;
            try
            {
                while (true)
                {
                    await Task.Delay(_options.CompactInterval, ct).ConfigureAwait(false);
                    var now = await _local.GetRevisionAsync(ct).ConfigureAwait(false);
                    if (previous > 0)
                    {
                        await _local.CompactAsync(previous, ct).ConfigureAwait(false);
                    }

                    previous = now;
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
            }
        }

        public async Task WaitSyncedAsync(TimeSpan timeout, CancellationToken ct)
        {
            var until = DateTimeOffset.UtcNow + timeout;
            while (!Synced)
            {
                if (DateTimeOffset.UtcNow > until)
                {
                    throw new KubernetesSyncException($"the Kubernetes API at {Server} did not answer every list within {timeout.TotalSeconds:0} s: "
                        + string.Join("; ", Informers.Where(s => !s.Synced).Select(s => $"{s.Resource}: {s.LastError ?? "no answer yet"}")));
                }

                await Task.Delay(TimeSpan.FromMilliseconds(50), ct).ConfigureAwait(false);
            }
        }

        public IReadOnlyList<IPNetwork> PodCidrsOf(string node) => _sources.Nodes.Get(node) is { } n ? Translate.PodCidrs(n) : [];

        public void Dispose()
        {
            _mirror.Dispose();
            _api.Dispose();
        }
    }
}

/// <summary>The informers did not list in time (unreachable server, refused credentials or RBAC).</summary>
public sealed class KubernetesSyncException : Exception
{
    public KubernetesSyncException()
    {
    }

    public KubernetesSyncException(string message)
        : base(message)
    {
    }

    public KubernetesSyncException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
