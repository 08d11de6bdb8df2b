using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using k8s.Models;

namespace Loom.Kubernetes;

/// <summary>What <c>loom status</c> shows of one informer.</summary>
public sealed record InformerState(string Resource, bool Synced, string ResourceVersion, long Events, long Relists, string? LastError);

/// <summary>
/// client-go's reflector for one resource: list, then watch from the list's resourceVersion (with bookmarks), following
/// every event's resourceVersion; a watch that ends or drops is resumed from the last one after a backoff (doubling
/// with jitter, reset by the next event); 410 Gone (the version was compacted away) lists again, and whatever the new
/// list lacks is reported deleted. Keeps the objects by "namespace/name" and reports each batch of changed keys.
/// </summary>
internal sealed class Informer<T, TList> : IInformer
    where T : class
{
    private readonly ApiConnection _api;
    private readonly KubernetesOptions _options;
    private readonly string _path;
    private readonly JsonTypeInfo<TList> _listType;
    private readonly JsonTypeInfo<T> _itemType;
    private readonly Func<TList, (IList<T>? Items, string? ResourceVersion)> _unpack;
    private readonly Func<T, V1ObjectMeta?> _meta;
    private readonly ConcurrentDictionary<string, T> _items = new(StringComparer.Ordinal);
    private volatile string? _error;
    private long _events;
    private long _relists;

    public Informer(string resource, string path, ApiConnection api, KubernetesOptions options, JsonTypeInfo<TList> listType, JsonTypeInfo<T> itemType,
        Func<TList, (IList<T>? Items, string? ResourceVersion)> unpack, Func<T, V1ObjectMeta?> meta)
    {
        Resource = resource;
        _path = path;
        _api = api;
        _options = options;
        _listType = listType;
        _itemType = itemType;
        _unpack = unpack;
        _meta = meta;
    }

    public string Resource { get; }

    /// <summary>Called with the keys that changed (added, modified or deleted), one batch at a time, in order.</summary>
    public Func<IReadOnlyCollection<string>, CancellationToken, Task> Changed { get; set; } = (_, _) => Task.CompletedTask;

    public bool Synced { get; private set; }

    /// <summary>The version the next watch resumes from; null until listed, and again after 410 Gone.</summary>
    public string? ResourceVersion { get; private set; }

    public IReadOnlyDictionary<string, T> Items => _items;

    public T? Get(string key) => _items.GetValueOrDefault(key);

    public InformerState State => new(Resource, Synced, ResourceVersion ?? "", Interlocked.Read(ref _events), Interlocked.Read(ref _relists), _error);

    public async Task RunAsync(CancellationToken ct)
    {
        var failures = 0;
        var relistReason = "initial";
        while (!ct.IsCancellationRequested)
        {
            try
            {
                if (ResourceVersion is null)
                {
                    await ListAsync(relistReason, ct).ConfigureAwait(false);
                    failures = 0;
                }

                var events = 0;
                var opened = Environment.TickCount64;
                var gone = await WatchAsync(() => { failures = 0; events++; }, ct).ConfigureAwait(false);
                if (gone is not null)
                {
                    relistReason = gone;
                    continue; // list again at once
                }

                _error = null;
                if (events > 0 || Environment.TickCount64 - opened > 1000)
                {
                    failures = 0;
                    continue; // the server ended the watch (its timeout): resume at once
                }

                // A watch that ended at once without a single event: do not spin against a server that closes at once.
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (ApiException e) when (e.Status == HttpStatusCode.Gone)
            {
                _error = e.Message;
                relistReason = "gone";
                ResourceVersion = null;
            }
            catch (Exception e) when (e is HttpRequestException or IOException or ApiException or JsonException or OperationCanceledException)
            {
                // A dropped connection, a refused call or a deadline: try again from the same version after a backoff.
                _error = e is OperationCanceledException ? "timed out" : e.Message;
            }

            try
            {
                await Task.Delay(Backoff(failures++), ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
        }
    }

    private TimeSpan Backoff(int failures)
    {
        var exp = _options.BackoffFirst.TotalMilliseconds * Math.Pow(2, Math.Min(failures, 16));
        var capped = Math.Min(exp, _options.BackoffCap.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(capped * (0.8 + (0.4 * Random.Shared.NextDouble()))); // jitter: nodes do not retry in step
    }

    private async Task ListAsync(string reason, CancellationToken ct)
    {
        var list = await _api.GetAsync(_path, _listType, ct).ConfigureAwait(false);
        var (items, rv) = _unpack(list);
        var fresh = new Dictionary<string, T>(StringComparer.Ordinal);
        foreach (var item in items ?? [])
        {
            if (KeyOf(item) is { } key)
            {
                fresh[key] = item;
            }
        }

        var changed = new HashSet<string>(_items.Keys, StringComparer.Ordinal);
        changed.UnionWith(fresh.Keys);
        foreach (var gone in _items.Keys.Where(k => !fresh.ContainsKey(k)).ToList())
        {
            _items.TryRemove(gone, out _);
        }

        foreach (var (key, item) in fresh)
        {
            _items[key] = item;
        }

        ResourceVersion = rv ?? "";
        Interlocked.Increment(ref _relists);
        KubernetesMetrics.Relists.WithLabels(Resource, reason).Inc();
        await Changed(changed, ct).ConfigureAwait(false);
        Synced = true;
    }

    /// <summary>One watch until the server ends it; returns "gone" when it reported 410 (ResourceVersion is then null).</summary>
    private async Task<string?> WatchAsync(Action progressed, CancellationToken ct)
    {
        var query = $"watch=1&allowWatchBookmarks=true&resourceVersion={Uri.EscapeDataString(ResourceVersion ?? "")}&timeoutSeconds={_options.WatchTimeoutSeconds}";
        using var response = await _api.OpenWatchAsync(_path, query, ct).ConfigureAwait(false);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false));
        while (await reader.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
        {
            if (line.Length == 0)
            {
                continue;
            }

            using var doc = JsonDocument.Parse(line);
            var type = doc.RootElement.GetProperty("type").GetString() ?? "";
            var obj = doc.RootElement.GetProperty("object");
            KubernetesMetrics.WatchEvents.WithLabels(Resource, type).Inc();
            Interlocked.Increment(ref _events);
            if (type == "ERROR")
            {
                var code = obj.TryGetProperty("code", out var c) && c.TryGetInt32(out var n) ? n : 0;
                var message = obj.TryGetProperty("message", out var m) ? m.GetString() : null;
                if (code == (int)HttpStatusCode.Gone)
                {
                    _error = $"watch: 410 Gone: {message}";
                    ResourceVersion = null;
                    return "gone";
                }

                throw new ApiException($"watch {_path}: error event {code}: {message}");
            }

            var item = obj.Deserialize(_itemType) ?? throw new JsonException("null object in a watch event");
            var meta = _meta(item);
            if (type != "BOOKMARK" && KeyOf(item) is { } key)
            {
                if (type == "DELETED")
                {
                    _items.TryRemove(key, out _);
                }
                else
                {
                    _items[key] = item;
                }

                await Changed([key], ct).ConfigureAwait(false);
            }

            if (meta?.ResourceVersion is { Length: > 0 } rv)
            {
                ResourceVersion = rv;
            }

            progressed();
        }

        return null;
    }

    private string? KeyOf(T item) => _meta(item) is { Name: { } name } m
        ? string.IsNullOrEmpty(m.NamespaceProperty) ? name : $"{m.NamespaceProperty}/{name}"
        : null;
}

internal interface IInformer
{
    string Resource { get; }

    bool Synced { get; }

    InformerState State { get; }

    Task RunAsync(CancellationToken ct);
}
