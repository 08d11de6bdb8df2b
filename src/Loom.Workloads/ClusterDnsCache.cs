using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Core.Watch;

namespace Loom.Workloads;

/// <summary>
/// The Services and Endpoints the cluster DNS answers from, kept in memory by two <see cref="ObjectCache{T}"/>s (each
/// kind listed once, then followed by the store's watch; listed again after a compaction), so a query costs no store
/// round trip. Every change batch publishes a fresh immutable view for queries.
/// </summary>
public sealed class ClusterDnsCache : IAsyncDisposable
{
    private readonly TextWriter _log;
    private readonly ObjectCache<Service> _services;
    private readonly ObjectCache<Endpoint> _endpoints;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<IDisposable> _subscriptions = [];
    private readonly Task _loops;
    private readonly Lock _publish = new();
    private DnsView? _view;

    private ClusterDnsCache(IStore store, TextWriter log)
    {
        _log = log;
        _services = new ObjectCache<Service>(store, Kinds.Service, TimeProvider.System, Report);
        _endpoints = new ObjectCache<Endpoint>(store, Kinds.Endpoint, TimeProvider.System, Report);
        _subscriptions.Add(_services.Subscribe((_, _) => Publish()));
        _subscriptions.Add(_endpoints.Subscribe((_, _) => Publish()));
        _loops = Task.WhenAll(_services.RunAsync(_stop.Token), _endpoints.RunAsync(_stop.Token));
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
            await Task.WhenAll(_services.Synced, _endpoints.Synced).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException e)
        {
            throw new IOException("the store has not been listed yet", e);
        }

        await Publish().ConfigureAwait(false);
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

        _subscriptions.ForEach(s => s.Dispose());
        _stop.Dispose();
    }

    // A fresh immutable view for queries, once both kinds have been listed.
    private Task Publish()
    {
        lock (_publish)
        {
            if (_services.HasSynced && _endpoints.HasSynced)
            {
                Volatile.Write(ref _view, new DnsView(
                    [.. _services.Snapshot.Values.Select(v => v.Value)],
                    [.. _endpoints.Snapshot.Values.Select(v => v.Value)]));
            }
        }

        return Task.CompletedTask;
    }

    private void Report(CacheError e)
    {
        lock (_log)
        {
            _log.WriteLine($"{DateTimeOffset.UtcNow:O} dns: {e.Kind}{(e.Key is null ? "" : " " + e.Key)}: {e.Reason}");
            _log.Flush();
        }
    }
}
