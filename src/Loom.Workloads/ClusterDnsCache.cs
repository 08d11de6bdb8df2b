using System.Text.Json;
using Loom.Core.Model;
using Loom.Core.Store;

namespace Loom.Workloads;

/// <summary>
/// The Services and Endpoints the cluster DNS answers from, kept in memory: each kind is listed once, then followed
/// by the store's watch from the list's revision, so a query costs no store round trip. A compacted (or broken)
/// watch re-lists, as an informer does.
/// </summary>
public sealed class ClusterDnsCache : IAsyncDisposable
{
    private readonly IStore _store;
    private readonly TextWriter _log;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Service> _services = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Endpoint> _endpoints = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _servicesListed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _endpointsListed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loops;
    private readonly HashSet<string> _synced = new(StringComparer.Ordinal);
    private DnsView? _view;

    private ClusterDnsCache(IStore store, TextWriter log)
    {
        _store = store;
        _log = log;
        _loops = Task.WhenAll(
            Task.Run(() => FollowAsync(Kinds.Service, _services, _servicesListed, _stop.Token)),
            Task.Run(() => FollowAsync(Kinds.Endpoint, _endpoints, _endpointsListed, _stop.Token)));
    }

    /// <summary>Starts following the store; the view is there once both kinds have been listed.</summary>
    public static ClusterDnsCache Start(IStore store, TextWriter? log = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        return new ClusterDnsCache(store, log ?? TextWriter.Null);
    }

    /// <summary>The current view; waits for the first listing, and throws IOException if that has not come by <paramref name="cancellationToken"/>.</summary>
    public async Task<DnsView> ViewAsync(CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _view) is { } view)
        {
            return view;
        }

        try
        {
            await Task.WhenAll(_servicesListed.Task, _endpointsListed.Task).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException e)
        {
            throw new IOException("the store has not been listed yet", e);
        }

        return Volatile.Read(ref _view)!;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loops.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // stopping
        }

        _stop.Dispose();
    }

    private async Task FollowAsync<T>(ObjectKind<T> kind, Dictionary<string, T> items, TaskCompletionSource listed, CancellationToken ct)
        where T : class
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var (list, revision) = await _store.ListAsync(kind, ct).ConfigureAwait(false);
                lock (_lock)
                {
                    items.Clear();
                    foreach (var i in list)
                    {
                        items[i.Key] = i.Value;
                    }

                    _synced.Add(kind.Name);
                    Publish();
                }

                listed.TrySetResult();
                await foreach (var e in _store.WatchAsync(kind, revision, ct).ConfigureAwait(false))
                {
                    lock (_lock)
                    {
                        if (e.Value is null)
                        {
                            items.Remove(e.Key);
                        }
                        else
                        {
                            items[e.Key] = e.Value;
                        }

                        Publish();
                    }
                }
            }
            catch (StoreCompactedException e)
            {
                Log($"{kind.Name} watch compacted, listing again: {e.Message}");
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or JsonException or System.Data.Common.DbException && !ct.IsCancellationRequested)
            {
                Log($"{kind.Name} watch broke, listing again: {e.Message}");
                await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
            }
        }
    }

    // Under _lock: a fresh immutable view for queries, once both kinds have been listed.
    private void Publish()
    {
        if (_synced.Count == 2)
        {
            Volatile.Write(ref _view, new DnsView([.. _services.Values], [.. _endpoints.Values]));
        }
    }

    private void Log(string line)
    {
        lock (_log)
        {
            _log.WriteLine($"{DateTimeOffset.UtcNow:O} dns: {line}");
            _log.Flush();
        }
    }
}
