using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Loom.Linux.Bpf;

/// <summary>Receives one record of a <see cref="BpfRingBuffer"/>; the span is valid only during the call.</summary>
public delegate void RingRecordHandler(ReadOnlySpan<byte> record);

/// <summary>
/// The consumer side of a BPF_MAP_TYPE_RINGBUF map (libbpf's ring_buffer): <see cref="Poll"/> waits for records and
/// hands each to a handler. One thread polls at a time (libbpf's consumer is not thread-safe). The callback goes
/// through an [UnmanagedCallersOnly] function and a GCHandle to this object, which works under NativeAOT. The handler
/// may not poll (libbpf is walking the ring); it may dispose, which takes effect when the poll returns.
/// </summary>
public sealed unsafe class BpfRingBuffer : IDisposable
{
    private const int EINTR = 4;

    private readonly object _pollLock = new();
    private GCHandle _self;
    private nint _rb;
    private RingRecordHandler? _handler;
    private Exception? _error;

    // Set while libbpf walks the ring: the lock is re-entrant, so the handler (same thread) could otherwise free it.
    private bool _polling;
    private bool _disposeDeferred;
    private int _handled;

    private BpfRingBuffer(BpfMap map)
    {
        if (map.Type != BpfMapType.RingBuf)
        {
            throw new ArgumentException($"{map} is not a ring buffer", nameof(map));
        }

        _self = GCHandle.Alloc(this);
        _rb = LibBpf.ring_buffer__new(map.Fd, &OnSample, GCHandle.ToIntPtr(_self), null);
        if (_rb == 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            _self.Free();
            throw new BpfException(errno, "ring_buffer__new", map.Name);
        }
    }

    /// <summary>A consumer of <paramref name="map"/> (which must stay open while this lives).</summary>
    public static BpfRingBuffer Open(BpfMap map) => new(map);

    /// <summary>
    /// Waits up to <paramref name="timeoutMs"/> (0: not at all) for the producer's wakeup, then hands every record in the
    /// ring to <paramref name="onRecord"/>, also those written without a wakeup (BPF_RB_NO_WAKEUP); returns how many. An
    /// exception of the handler stops the poll and is rethrown.
    /// </summary>
    public int Poll(RingRecordHandler onRecord, int timeoutMs)
    {
        ArgumentNullException.ThrowIfNull(onRecord);
        ArgumentOutOfRangeException.ThrowIfNegative(timeoutMs); // no endless wait: producers may not wake it
        lock (_pollLock)
        {
            if (_polling)
            {
                throw new InvalidOperationException("a ring buffer's record handler may not poll the same ring");
            }

            ObjectDisposedException.ThrowIf(_rb == 0 || _disposeDeferred, this);
            _handler = onRecord;
            _error = null;
            _handled = 0;
            _polling = true;
            try
            {
                var n = LibBpf.ring_buffer__poll(_rb, timeoutMs);
                Rethrow();
                if (_disposeDeferred)
                {
                    return _handled; // the handler disposed: the walk stopped (n < 0), the ring is freed below
                }

                if (n < 0 && -n != EINTR) // EINTR: a signal woke the wait; what is there is consumed below
                {
                    throw new BpfException(-n, "ring_buffer__poll", null);
                }

                // ring_buffer__poll reads only the rings that woke it: pick up what came without a wakeup.
                var more = LibBpf.ring_buffer__consume(_rb);
                Rethrow();
                if (_disposeDeferred)
                {
                    return _handled;
                }

                if (more < 0)
                {
                    throw new BpfException(-more, "ring_buffer__consume", null);
                }

                return Math.Max(n, 0) + more;
            }
            finally
            {
                _handler = null;
                _polling = false;
                if (_disposeDeferred)
                {
                    Free();
                }
            }
        }
    }

    private void Rethrow()
    {
        if (_error is { } e)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e);
        }
    }

    public void Dispose()
    {
        lock (_pollLock)
        {
            if (_polling)
            {
                _disposeDeferred = true; // from the handler: libbpf still walks the ring, Poll frees it when it returns
                return;
            }

            Free();
        }
    }

    private void Free()
    {
        if (_rb != 0)
        {
            LibBpf.ring_buffer__free(_rb);
            _rb = 0;
            _self.Free();
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnSample(nint ctx, byte* data, nuint size)
    {
        var self = (BpfRingBuffer)GCHandle.FromIntPtr(ctx).Target!;
        if (self._disposeDeferred)
        {
            return -1; // disposed by an earlier record's handler: stop the walk
        }

        try
        {
            self._handler!(new ReadOnlySpan<byte>(data, checked((int)size)));
            self._handled++;
            return 0;
        }
        catch (Exception e)
        {
            // No exception may cross into libbpf: keep it for Poll, and a negative return stops the consumption.
            self._error = e;
            return -1;
        }
    }
}
