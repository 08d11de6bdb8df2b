using Loom.Core.Flows;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Flows;

/// <summary>
/// The agent's end of the node's flow-event ring: <see cref="Poll"/> decodes every event the programs wrote (called from
/// ONE thread), <see cref="Lost"/> counts those that did not fit. Opening creates the shared maps when absent, so the
/// reader can start before any program is loaded. When the pins are replaced (the events directory removed and created
/// again), the next poll drains the old ring and moves to the new one.
/// </summary>
public sealed class FlowEventReader : IDisposable
{
    private readonly string _directory;
    private readonly object _swap = new(); // Lost may be read from another thread while Poll swaps the maps
    private Maps _maps;

    // Kernel counts of the lost counters a reopen let go, and records taken off the ring but never handed on (the
    // handler threw on it, or it was of another size).
    private long _lostBefore;
    private long _droppedHere;
    private bool _disposed;

    private FlowEventReader(string directory, Maps maps)
    {
        _directory = directory;
        _maps = maps;
    }

    /// <summary>Opens the ring and the lost counter pinned in <paramref name="eventsDirectory"/> (creating them if absent).</summary>
    public static FlowEventReader Open(string eventsDirectory, string? objectDirectory = null)
    {
        FlowEventMaps.Ensure(eventsDirectory, objectDirectory);
        return new FlowEventReader(eventsDirectory, Maps.Open(eventsDirectory));
    }

    /// <summary>
    /// Events the programs could not put in the ring (it was full), summed over the CPUs, plus those this reader took
    /// off the ring and could not deliver (the handler threw on it, or its size was not <see cref="FlowEvent.Size"/>).
    /// </summary>
    public long Lost
    {
        get
        {
            lock (_swap)
            {
                return _maps.KernelLost + _lostBefore + Interlocked.Read(ref _droppedHere);
            }
        }
    }

    /// <summary>
    /// Waits up to <paramref name="timeoutMs"/> and hands every event in the ring to <paramref name="onEvent"/>; returns
    /// how many. The programs wake the reader only once an eighth of the ring is waiting, so at a low rate an event is
    /// delivered at the end of the wait: the timeout is the latency bound (the agent polls with ~100 ms). A record of
    /// another size than <see cref="FlowEvent.Size"/> (a program of another version) is skipped, not decoded, and counted
    /// in <see cref="Lost"/>; so is the event on which <paramref name="onEvent"/> throws (the exception ends the poll).
    /// </summary>
    public int Poll(Action<FlowEvent> onEvent, int timeoutMs)
    {
        ArgumentNullException.ThrowIfNull(onEvent);
        ObjectDisposedException.ThrowIf(_disposed, this);
        RingRecordHandler handler = record =>
        {
            if (record.Length != FlowEvent.Size)
            {
                Interlocked.Increment(ref _droppedHere);
                return;
            }

            try
            {
                onEvent(FlowEvent.Decode(record));
            }
            catch
            {
                Interlocked.Increment(ref _droppedHere); // consumed: libbpf moved past it before calling the handler
                throw;
            }
        };
        var drained = ReopenIfReplaced(handler);
        return drained + _maps.Consumer.Poll(handler, timeoutMs);
    }

    // A pin that names another map than the one held: read what is left in the old ring, then take the new one. A pin
    // that is gone (the directory removed) keeps the old maps: the programs still loaded write into them.
    private int ReopenIfReplaced(RingRecordHandler handler)
    {
        var old = _maps;
        if (!Maps.Replaced(_directory, old))
        {
            return 0;
        }

        var next = Maps.Open(_directory);
        var drained = 0;
        try
        {
            drained = old.Consumer.Poll(handler, 0);
        }
        finally
        {
            lock (_swap)
            {
                _lostBefore += old.KernelLost;
                _maps = next;
            }

            old.Dispose();
        }

        return drained;
    }

    public void Dispose()
    {
        _disposed = true;
        _maps.Dispose();
    }

    private sealed class Maps(BpfMap ring, BpfMap lost, BpfRingBuffer consumer) : IDisposable
    {
        public BpfRingBuffer Consumer => consumer;

        public long KernelLost => (long)lost.AsPerCpu<uint, ulong>().Lookup(0).Aggregate(0UL, (a, b) => a + b);

        public static Maps Open(string directory)
        {
            BpfMap? ring = null, lost = null;
            try
            {
                ring = BpfMap.OpenPinned(Path.Combine(directory, FlowEventMaps.Ring));
                lost = BpfMap.OpenPinned(Path.Combine(directory, FlowEventMaps.Lost));
                lost.AsPerCpu<uint, ulong>(); // checks its shape now rather than at the first read
                return new Maps(ring, lost, BpfRingBuffer.Open(ring));
            }
            catch
            {
                ring?.Dispose();
                lost?.Dispose();
                throw;
            }
        }

        public static bool Replaced(string directory, Maps held) =>
            IsReplaced(Path.Combine(directory, FlowEventMaps.Ring), held.RingId)
            || IsReplaced(Path.Combine(directory, FlowEventMaps.Lost), held.LostId);

        private uint RingId => ring.Id;

        private uint LostId => lost.Id;

        public void Dispose()
        {
            consumer.Dispose();
            ring.Dispose();
            lost.Dispose();
        }

        private static bool IsReplaced(string path, uint held)
        {
            if (!File.Exists(path))
            {
                return false;
            }

            try
            {
                using var m = BpfMap.OpenPinned(path);
                return m.Id != held;
            }
            catch (BpfException)
            {
                return false; // removed in between
            }
        }
    }
}
