using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Loom.Core.Model;
using Loom.Core.Store;

namespace Loom.Kubernetes;

/// <summary>
/// Publishes the agent's own Node (as it writes it to the local store) to the API, as Flannel and Cilium do: Loom's
/// annotations on the Node, the NetworkUnavailable=False condition once the node is ready, and the LoomNode (created if
/// missing, its status updated). Only when what would be published changes (a heartbeat alone does not), at most
/// every <see cref="MinInterval"/>.
/// </summary>
internal sealed class NodePublisher(ApiConnection api, IStore store, string self, TextWriter log)
{
    public const string MergePatch = "application/merge-patch+json";
    public const string StrategicMergePatch = "application/strategic-merge-patch+json";

    private string? _published;
    private bool _conditionSet;
    private bool _loomNodeExists;

    public TimeSpan MinInterval { get; init; } = TimeSpan.FromSeconds(5);

    public string? LastError { get; private set; }

    public DateTimeOffset? LastPublished { get; private set; }

    public async Task RunAsync(TimeSpan retryFirst, TimeSpan retryCap, CancellationToken ct)
    {
        var failures = 0;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var (items, revision) = await store.ListAsync(Kinds.Node, ct).ConfigureAwait(false);
                if (items.FirstOrDefault(n => n.Key == self) is { } mine)
                {
                    await PublishAsync(mine.Value, ct).ConfigureAwait(false);
                }

                failures = 0;
                await foreach (var e in store.WatchAsync(Kinds.Node, revision, ct).ConfigureAwait(false))
                {
                    if (e.Key == self && e.Value is { } node)
                    {
                        await PublishAsync(node, ct).ConfigureAwait(false);
                        await Task.Delay(MinInterval, ct).ConfigureAwait(false); // changes meanwhile are published by the next event
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is ApiException or HttpRequestException or IOException or OperationCanceledException or StoreCompactedException)
            {
                LastError = e.Message;
                await log.WriteLineAsync($"kubernetes: publishing node {self}: {e.Message}").ConfigureAwait(false);
                var delay = Math.Min(retryCap.TotalMilliseconds, retryFirst.TotalMilliseconds * Math.Pow(2, Math.Min(failures++, 16)));
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(delay * (0.8 + (0.4 * Random.Shared.NextDouble()))), ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Publishes <paramref name="node"/> unless the same was published last.</summary>
    public async Task PublishAsync(Node node, CancellationToken ct)
    {
        var status = LoomNodeStatus.From(node, DateTimeOffset.UtcNow);
        var fingerprint = JsonSerializer.Serialize(status with { Heartbeat = null }, KubeJsonContext.Default.LoomNodeStatusJson);
        if (fingerprint == _published && (_conditionSet || !node.Ready))
        {
            return;
        }

        await api.SendJsonAsync(HttpMethod.Patch, $"/api/v1/nodes/{Uri.EscapeDataString(self)}", AnnotationsPatch(node), MergePatch, ct).ConfigureAwait(false);
        if (node.Ready && !_conditionSet)
        {
            await api.SendJsonAsync(HttpMethod.Patch, $"/api/v1/nodes/{Uri.EscapeDataString(self)}/status", ConditionPatch(DateTimeOffset.UtcNow), StrategicMergePatch, ct)
                .ConfigureAwait(false);
            _conditionSet = true;
        }

        await EnsureLoomNodeAsync(ct).ConfigureAwait(false);
        var body = new JsonObject { ["status"] = JsonSerializer.SerializeToNode(status, KubeJsonContext.Default.LoomNodeStatusJson) };
        await api.SendJsonAsync(HttpMethod.Patch, $"{LoomNodeObject.Path}/{Uri.EscapeDataString(self)}/status", body.ToJsonString(), MergePatch, ct).ConfigureAwait(false);
        _published = fingerprint;
        LastPublished = DateTimeOffset.UtcNow;
        LastError = null;
    }

    /// <summary>Flannel's backend-data / public-ip, under Loom's names; a null value (no VTEP yet) removes the key.</summary>
    internal static string AnnotationsPatch(Node node)
    {
        var annotations = new JsonObject
        {
            [Translate.PublicIpAnnotation] = node.UnderlayIp.ToString(),
            [Translate.UnderlayInterfaceAnnotation] = node.UnderlayInterface,
            [Translate.VtepMacAnnotation] = node.VtepMac,
        };
        return new JsonObject { ["metadata"] = new JsonObject { ["annotations"] = annotations } }.ToJsonString();
    }

    /// <summary>The condition a CNI sets once the node can network pods (conditions merge by type in a strategic merge patch).</summary>
    internal static string ConditionPatch(DateTimeOffset now)
    {
        var time = now.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        var condition = new JsonObject
        {
            ["type"] = "NetworkUnavailable",
            ["status"] = "False",
            ["reason"] = "LoomIsUp",
            ["message"] = "Loom is running on this node",
            ["lastTransitionTime"] = time,
            ["lastHeartbeatTime"] = time,
        };
        return new JsonObject { ["status"] = new JsonObject { ["conditions"] = new JsonArray(condition) } }.ToJsonString();
    }

    private async Task EnsureLoomNodeAsync(CancellationToken ct)
    {
        if (_loomNodeExists)
        {
            return;
        }

        try
        {
            await api.GetAsync($"{LoomNodeObject.Path}/{Uri.EscapeDataString(self)}", KubeJsonContext.Default.LoomNodeObject, ct).ConfigureAwait(false);
        }
        catch (ApiException e) when (e.Status == HttpStatusCode.NotFound)
        {
            var created = new LoomNodeObject { Metadata = new LoomObjectMeta { Name = self }, Spec = JsonDocument.Parse("{}").RootElement };
            try
            {
                await api.SendJsonAsync(HttpMethod.Post, LoomNodeObject.Path, JsonSerializer.Serialize(created, KubeJsonContext.Default.LoomNodeObject), "application/json", ct)
                    .ConfigureAwait(false);
            }
            catch (ApiException conflict) when (conflict.Status == HttpStatusCode.Conflict)
            {
                // Created meanwhile (a previous life of this agent): fine.
            }
        }

        _loomNodeExists = true;
    }
}
