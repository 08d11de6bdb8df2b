namespace Loom.Store.Sqlite;

/// <summary>
/// Wakes one store's watches when its revision moves. A file event (<see cref="SqliteFileEvents"/>), a commit of this
/// process, or the safety poll makes one cheap read of the revision for the whole store, and the watches read the
/// change log only when it moved: a lease keep-alive or a checkpoint writes the file without a new revision. An event
/// can come before its commit is visible (the -wal is written before the wal-index says so), and a transaction writes
/// several pages (an event each): so the check runs <see cref="Debounce"/> after the first event, and an event that
/// showed nothing new is checked again after each of <see cref="SettleDelays"/> (a writer descheduled between its
/// -wal write and its commit on a loaded machine), which is what lets the safety poll be long.
/// </summary>
internal sealed class SqliteChangeNotifier : IDisposable
{
    /// <summary>From a file event to the check: the writer's other pages and its commit land meanwhile (one check, not one per page).</summary>
    internal static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(3);

    /// <summary>The later looks after an event that showed nothing new, each after the one before saw nothing either.</summary>
    internal static readonly TimeSpan[] SettleDelays = [TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(250)];

    /// <summary>Without inotify (none here, or no watch on the directory) the revision is read this often, as watches all polled before.</summary>
    internal static readonly TimeSpan NoEventsPoll = TimeSpan.FromMilliseconds(50);

    private readonly string _path;
    private readonly Func<long> _readRevision;
    private readonly TimeProvider _time;
    private readonly TimeSpan _safetyPoll;
    private readonly bool _fileEvents;
    private readonly Lock _gate = new();
    private TaskCompletionSource _changed = New();
    private IDisposable? _events;
    private ITimer? _poll;
    private ITimer? _settle;
    private ITimer? _debounce;
    private bool _debouncing;
    private long _seen = -1;
    private long _checks;
    private bool _started;
    private bool _running;
    private bool _again;
    private bool _settleWanted;
    private int _settleStep; // the index in SettleDelays of the next look after an event
    private bool _disposed;

    public SqliteChangeNotifier(string path, Func<long> readRevision, TimeProvider time, TimeSpan safetyPoll, bool fileEvents = true)
    {
        _fileEvents = fileEvents;
        _path = path;
        _readRevision = readRevision;
        _time = time;
        _safetyPoll = safetyPoll;
    }

    /// <summary>Completes at the next move of the revision after this read: take it before reading the change log.</summary>
    public Task Changed => Volatile.Read(ref _changed).Task;

    /// <summary>How many times the revision was read (tests: an idle store must not poll).</summary>
    internal long Checks => Interlocked.Read(ref _checks);

    /// <summary>Subscribes to the file's events and starts the safety poll, at the store's first watch.</summary>
    public void Start()
    {
        lock (_gate)
        {
            if (_started || _disposed)
            {
                return;
            }

            _started = true;
            _events = _fileEvents ? SqliteFileEvents.Subscribe(_path, OnFileEvent) : null;
            var every = _events is null && _fileEvents ? NoEventsPoll : _safetyPoll;
            _poll = _time.CreateTimer(_ => RequestCheck(settle: false), null, every, every);
            _settle = _time.CreateTimer(_ => RequestCheck(settle: true, again: true), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _debounce = _time.CreateTimer(_ => Debounced(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>This process committed <paramref name="revision"/>: wake the watches now, and let the file event it makes find nothing new.</summary>
    public void Committed(long revision)
    {
        if (Advance(revision))
        {
            Signal();
        }
    }

    private void OnFileEvent()
    {
        lock (_gate)
        {
            if (_debouncing || _disposed)
            {
                return;
            }

            _debouncing = true;
            _debounce?.Change(Debounce, Timeout.InfiniteTimeSpan);
        }
    }

    private void Debounced()
    {
        lock (_gate)
        {
            _debouncing = false;
        }

        RequestCheck(settle: true);
    }

    /// <param name="settle">Check again later if this shows nothing new (a file event's check).</param>
    /// <param name="again">This is such a later look (the next one waits longer); else a new event starts over.</param>
    private void RequestCheck(bool settle, bool again = false)
    {
        lock (_gate)
        {
            _settleWanted |= settle;
            if (settle && !again)
            {
                _settleStep = 0;
            }

            if (_running)
            {
                _again = true;
                return;
            }

            _running = true;
        }

        ThreadPool.UnsafeQueueUserWorkItem(_ => RunChecks(), null);
    }

    private void RunChecks()
    {
        while (true)
        {
            lock (_gate)
            {
                if (_disposed)
                {
                    // A timer that fired as the store closed: reading now would reopen the file (and its -wal) being removed.
                    _running = false;
                    return;
                }
            }

            bool advanced;
            Interlocked.Increment(ref _checks);
            try
            {
                advanced = Advance(_readRevision());
            }
#pragma warning disable CA1031 // Any failure: the watches read themselves and report it.
            catch (Exception)
#pragma warning restore CA1031
            {
                advanced = true;
            }

            if (advanced)
            {
                Signal();
            }

            lock (_gate)
            {
                if (_again)
                {
                    _again = false;
                    continue;
                }

                _running = false;
                if (_settleWanted)
                {
                    _settleWanted = false;
                    if (!advanced && !_disposed && _settleStep < SettleDelays.Length)
                    {
                        _settle?.Change(SettleDelays[_settleStep++], Timeout.InfiniteTimeSpan);
                    }
                }

                return;
            }
        }
    }

    /// <summary>Raises the revision seen to <paramref name="revision"/>; true if it moved.</summary>
    private bool Advance(long revision)
    {
        var seen = Interlocked.Read(ref _seen);
        while (revision > seen)
        {
            var was = Interlocked.CompareExchange(ref _seen, revision, seen);
            if (was == seen)
            {
                return true;
            }

            seen = was;
        }

        return false;
    }

    private void Signal() => Interlocked.Exchange(ref _changed, New()).TrySetResult();

    private static TaskCompletionSource New() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _events?.Dispose();
            _poll?.Dispose();
            _settle?.Dispose();
            _debounce?.Dispose();
        }
    }
}
