using Grpc.Core;
using Microsoft.Data.Sqlite;

namespace Loom.Agent;

/// <summary>
/// Whether the agent can reach its store, from the outcome of every store call (<see cref="GuardedStore"/>): a call
/// failing on the transport or a lock marks it unreachable since the first such failure; the next success marks it
/// reachable again. A locked SQLite file still serves reads (WAL), so after a failed write only a write's success
/// counts as the store being back. <c>loom status</c> and the metrics show this; CNI ADD fails fast on it.
/// </summary>
internal sealed class StoreHealth(TimeProvider? clock = null) : IDisposable
{
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;
    private readonly Lock _lock = new();
    private DateTimeOffset? _since;
    private string _reason = "";
    private bool _writesFailing;
    private TaskCompletionSource _back = Reachable();
    private CancellationTokenSource _reads = new();

    public bool IsReachable
    {
        get
        {
            lock (_lock)
            {
                return _since is null;
            }
        }
    }

    /// <summary>Null while reachable; else since when, and the first failure's reason.</summary>
    public (DateTimeOffset Since, string Reason)? Outage
    {
        get
        {
            lock (_lock)
            {
                return _since is { } since ? (since, _reason) : null;
            }
        }
    }

    /// <summary>Seconds since the store became unreachable; 0 while reachable.</summary>
    public double UnreachableSeconds => Outage is { } o ? Math.Max(0, (_clock.GetUtcNow() - o.Since).TotalSeconds) : 0;

    /// <summary>Completes when the store is reachable again; never while it is reachable (a retry then waits its backoff).</summary>
    public Task Recovered
    {
        get
        {
            lock (_lock)
            {
                return _since is null ? Task.Delay(Timeout.Infinite) : _back.Task;
            }
        }
    }

    /// <summary>Cancelled when a read fails on the transport: a watch opened before then may hang on a frozen server and is restarted.</summary>
    public CancellationToken ReadsBroken
    {
        get
        {
            lock (_lock)
            {
                return _reads.Token;
            }
        }
    }

    public void Succeeded(bool write)
    {
        TaskCompletionSource? back = null;
        lock (_lock)
        {
            if (_since is null || (_writesFailing && !write))
            {
                return;
            }

            _since = null;
            _reason = "";
            _writesFailing = false;
            back = _back;
        }

        back.TrySetResult();
        Publish();
    }

    /// <summary>Records <paramref name="e"/> if it says the store is unreachable; returns whether it did.</summary>
    public bool Failed(Exception e, bool write)
    {
        if (!IsOutage(e))
        {
            return false;
        }

        CancellationTokenSource? broken = null;
        lock (_lock)
        {
            if (_since is null)
            {
                _since = _clock.GetUtcNow();
                _reason = $"{e.GetType().Name}: {e.Message}";
                _back = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            _writesFailing |= write;
            if (!write)
            {
                broken = _reads;
                _reads = new CancellationTokenSource();
            }
        }

        broken?.Cancel();
        broken?.Dispose();
        Publish();
        return true;
    }

    /// <summary>Sets the gauges; the probe calls it every tick so the outage's length keeps counting.</summary>
    public void Publish()
    {
        AgentMetrics.StoreReachable.Set(IsReachable ? 1 : 0);
        AgentMetrics.StoreUnreachableSeconds.Set(UnreachableSeconds);
    }

    /// <summary>
    /// A transport or lock failure: etcd unreachable or not answering, SQLite busy, locked, failing I/O or corrupt,
    /// a call past its deadline. Anything else (a failed compare-and-swap, a compacted watch, a bad value) is the
    /// store answering.
    /// </summary>
    public static bool IsOutage(Exception e) => e switch
    {
        RpcException r => r.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded,
        SqliteException s => s.SqliteErrorCode is 5 or 6 or 10 or 11 or 13 or 14 or 26, // BUSY LOCKED IOERR CORRUPT FULL CANTOPEN NOTADB
        TimeoutException or IOException or System.Net.Sockets.SocketException or HttpRequestException => true,
        _ => false,
    };

    public void Dispose()
    {
        lock (_lock)
        {
            _reads.Dispose();
        }
    }

    private static TaskCompletionSource Reachable()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        done.SetResult();
        return done;
    }
}
