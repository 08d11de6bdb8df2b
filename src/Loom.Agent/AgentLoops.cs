using Loom.Core.Store;
using Loom.Core.Model;
using RetryPolicy = Loom.Core.Reconcile.Backoff;

namespace Loom.Agent;

/// <summary>
/// The agent's loops never end on an error: the store (etcd's RpcException, SQLite's SqliteException), the kernel and
/// the firewall tools all fail now and then, and an agent that exits over it is restarted into the same failure while
/// the datapath it programmed goes stale. Every failure is logged, counted and retried with exponential backoff;
/// only cancellation (shutdown) ends a loop. Bugs are caught too, deliberately, and logged with their stack trace:
/// the kernel keeps forwarding on what was programmed, which serves pods better than a crash loop. Every controller of
/// the agent runs its loops here, and reports refused objects through <see cref="Refused"/>.
/// </summary>
internal sealed class AgentLoops(IStore store, TextWriter log)
{
    private readonly InvalidObjects _invalid = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _failing = new(StringComparer.Ordinal);

    /// <summary>First delay after a failure; doubles per consecutive failure up to <see cref="RetryCap"/>.</summary>
    internal TimeSpan RetryFirst { get; init; } = TimeSpan.FromSeconds(1);

    internal TimeSpan RetryCap { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The store's health: a retry waiting out an outage's backoff goes at once when the store is back.</summary>
    internal StoreHealth? StoreHealth { get; init; }

    /// <summary>
    /// Watches the store from <paramref name="fromRevision"/> and releases <paramref name="signal"/> for every event
    /// <paramref name="relevant"/> accepts. After a compaction or a broken watch it resumes and signals once, since a
    /// full pass from the current state is all a missed event needs.
    /// </summary>
    internal async Task WatchAsync(string? kind, long fromRevision, Func<StoreEvent, bool> relevant, SemaphoreSlim signal, string what, CancellationToken ct)
    {
        var backoff = new Backoff(RetryFirst, RetryCap);
        var loop = what + " watch";
        var resync = false;
        while (true)
        {
            try
            {
                if (resync)
                {
                    fromRevision = await store.GetRevisionAsync(ct).ConfigureAwait(false);
                    resync = false;
                }

                await foreach (var e in store.WatchAsync(kind, fromRevision, ct).ConfigureAwait(false))
                {
                    fromRevision = e.Revision;
                    Succeeded(loop, backoff);
                    if (relevant(e))
                    {
                        signal.Release();
                    }
                }
            }
            catch (StoreCompactedException)
            {
                resync = true;
                signal.Release();
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                await WaitAsync(Failed(loop, e, backoff), ct).ConfigureAwait(false);
                signal.Release();
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="pass"/> once per burst of signals, and every <paramref name="every"/> (30 s by default)
    /// anyway (which repairs what someone changed by hand while the store was quiet); a failed pass is retried after
    /// the backoff.
    /// </summary>
    internal Task RunOnSignalAsync(SemaphoreSlim signal, Func<CancellationToken, Task> pass, string what, CancellationToken ct, TimeSpan? every = null)
    {
        var interval = every ?? TimeSpan.FromSeconds(30);
        return RunOnSignalAsync(signal, pass, what, () => interval, ct);
    }

    /// <summary>As the other overload, with the interval read before each wait (a setting that can change meanwhile).</summary>
    internal async Task RunOnSignalAsync(SemaphoreSlim signal, Func<CancellationToken, Task> pass, string what, Func<TimeSpan> every, CancellationToken ct)
    {
        var backoff = new Backoff(RetryFirst, RetryCap);
        while (true)
        {
            await signal.WaitAsync(every(), ct).ConfigureAwait(false);
            while (signal.CurrentCount > 0)
            {
                await signal.WaitAsync(ct).ConfigureAwait(false);
            }

            try
            {
                await pass(ct).ConfigureAwait(false);
                Succeeded(what, backoff);
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                await WaitAsync(Failed(what, e, backoff), ct).ConfigureAwait(false);
                signal.Release();
            }
        }
    }

    /// <summary>
    /// A start-up step, retried with backoff until it succeeds: an agent that cannot reach its store yet waits for it
    /// instead of exiting. <see cref="AgentStartException"/> is not retried: it says what to fix.
    /// </summary>
    internal async Task<T> RetryAsync<T>(string what, Func<CancellationToken, Task<T>> step, CancellationToken ct)
    {
        var backoff = new Backoff(RetryFirst, RetryCap);
        while (true)
        {
            try
            {
                var result = await step(ct).ConfigureAwait(false);
                Succeeded(what, backoff);
                return result;
            }
            catch (Exception e) when (e is not AgentStartException && !ct.IsCancellationRequested)
            {
                await WaitAsync(Failed(what, e, backoff), ct).ConfigureAwait(false);
            }
        }
    }

    internal Task RetryAsync(string what, Func<CancellationToken, Task> step, CancellationToken ct) =>
        RetryAsync(what, async c =>
        {
            await step(c).ConfigureAwait(false);
            return true;
        }, ct);

    /// <summary>
    /// Waits out a backoff, cut short when the store comes back from an outage: the watches then resume from their
    /// revision and the passes apply what changed meanwhile, instead of after a backoff grown to its cap.
    /// </summary>
    private async Task WaitAsync(TimeSpan delay, CancellationToken ct)
    {
        if (StoreHealth is not { IsReachable: false } health)
        {
            await Task.Delay(delay, ct).ConfigureAwait(false);
            return;
        }

        await Task.WhenAny(Task.Delay(delay, ct), health.Recovered).ConfigureAwait(false);
        ct.ThrowIfCancellationRequested();
    }

    /// <summary>Logs and counts a failed pass; returns how long to wait before the next.</summary>
    private TimeSpan Failed(string what, Exception e, Backoff backoff)
    {
        var delay = backoff.Next();
        AgentMetrics.LoopFailures.WithLabels(what, e.GetType().Name).Inc();
        AgentMetrics.LoopBackoff.WithLabels(what).Set(delay.TotalSeconds);
        _failing[what] = $"{e.GetType().Name}: {e.Message}";
        Log($"{what} failed, retrying in {delay.TotalSeconds:0.###} s: {Describe(e)}");
        return delay;
    }

    /// <summary>The last error of loop <paramref name="what"/> if its last pass failed, else null.</summary>
    public string? LastError(string what) => _failing.GetValueOrDefault(what);

    private void Succeeded(string what, Backoff backoff)
    {
        if (backoff.Reset())
        {
            AgentMetrics.LoopBackoff.WithLabels(what).Set(0);
            _failing.TryRemove(what, out _);
        }
    }

    /// <summary>Logs what a pass refused that the previous pass of <paramref name="scope"/> did not; see <see cref="InvalidObjects"/>.</summary>
    public void Refused(string scope, IReadOnlyCollection<Rejection> rejected)
    {
        foreach (var r in _invalid.Report(scope, rejected))
        {
            Log($"refused {r} ({r.Reason}); skipped");
        }
    }

    /// <summary>
    /// The node's NodeConfig (null: none) and the cluster config as stored now (the start-up copy if unreadable), what a
    /// controller's live choices (service backend, policy mode) follow; objects that do not decode are reported under
    /// <paramref name="scope"/>.
    /// </summary>
    public async Task<(NodeConfig? Node, ClusterConfig Cluster)> ConfigsAsync(NodeContext node, string scope, CancellationToken ct)
    {
        var rejected = new List<Rejection>();
        var nodeConfig = await store.GetValidAsync(Kinds.NodeConfig, node.Name, Malformed(Kinds.NodeConfig.Name, rejected), ct).ConfigureAwait(false);
        var cluster = await store.GetValidAsync(Kinds.ClusterConfig, "cluster", Malformed(Kinds.ClusterConfig.Name, rejected), ct).ConfigureAwait(false);
        Refused(scope, rejected);
        return (nodeConfig?.Value, cluster?.Value ?? node.Cluster);
    }

    /// <summary>An <c>onInvalid</c> for the store's tolerant reads: the object does not decode.</summary>
    public static Action<string, string> Malformed(string kind, List<Rejection> rejected) =>
        (key, reason) => rejected.Add(new Rejection(kind, key, "malformed", reason));

    public void Log(string message) =>
        log.WriteLine($"{DateTimeOffset.UtcNow:HH:mm:ss.fff} {message}");

    /// <summary>The log text of a failure: a bug's stack trace (to find it), otherwise the message (the store, the kernel or a tool failing).</summary>
    public static string Describe(Exception e) => IsBug(e) ? e.ToString() : $"{e.GetType().Name}: {e.Message}";

    internal static bool IsBug(Exception e) =>
        e is NullReferenceException or IndexOutOfRangeException or InvalidCastException or KeyNotFoundException or ArgumentException;

    /// <summary>A loop's failures in a row, timed by the shared <see cref="RetryPolicy"/>; back to the first delay after a success.</summary>
    private sealed class Backoff(TimeSpan first, TimeSpan cap)
    {
        private readonly RetryPolicy _policy = new(first, cap);
        private int _failures;

        public TimeSpan Next() => _policy.Delay(++_failures);

        /// <summary>True if there was something to reset (the loop had been failing).</summary>
        public bool Reset()
        {
            var failing = _failures > 0;
            _failures = 0;
            return failing;
        }
    }
}
