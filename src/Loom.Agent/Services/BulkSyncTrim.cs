namespace Loom.Agent.Services;

/// <summary>
/// Gives back the memory a bulk service sync used. Programming thousands of ports at once (the first sync, a backend
/// switch, 10,000 Services created) allocates far more than it keeps, and the GC leaves what it freed committed:
/// a node agent then idles for hours with tens of megabytes it does not use. Once that many ports were written and
/// the writes have stopped for <see cref="Quiet"/>, one aggressive collection compacts the heap and decommits the
/// rest (a few tens of milliseconds for the agent's heap, off the sync path). Single changes never reach the threshold
/// between two trims, so steady-state syncs pay nothing.
/// </summary>
internal sealed class BulkSyncTrim(TimeProvider time) : IDisposable
{
    /// <summary>Ports written since the last trim that make the next quiet moment worth a trim.</summary>
    public const int Threshold = 1000;

    public static readonly TimeSpan Quiet = TimeSpan.FromSeconds(2);

    private readonly Lock _gate = new();
    private long _written;
    private ITimer? _timer;

    /// <summary>How many trims ran (tests, status).</summary>
    public long Trims { get; private set; }

    /// <summary>After a successful write of <paramref name="ports"/> ports: (re)arms the trim once past the threshold.</summary>
    public void Wrote(int ports)
    {
        lock (_gate)
        {
            _written += ports;
            if (_written < Threshold)
            {
                return;
            }

            _timer ??= time.CreateTimer(_ => Trim(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _timer.Change(Quiet, Timeout.InfiniteTimeSpan); // every further write pushes it back
        }
    }

    private void Trim()
    {
        lock (_gate)
        {
            _written = 0;
            Trims++;
        }

        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _timer?.Dispose();
            _timer = null;
        }
    }
}
