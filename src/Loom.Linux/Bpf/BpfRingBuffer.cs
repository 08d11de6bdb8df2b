using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Loom.Linux.Bpf;

/// <summary>Receives one record of a <see cref="BpfRingBuffer"/>; the span is valid only during the call.</summary>
public delegate void RingRecordHandler(ReadOnlySpan<byte> record);

/// <summary>
/// The consumer side of a BPF_MAP_TYPE_RINGBUF map (libbpf's ring_buffer): <see cref="Poll"/> waits for records and
/// hands each to a handler. One thread polls at a time (libbpf's consumer is not thread-safe). The callback goes
/// through an [UnmanagedCallersOnly] function and a GCHandle to this object, which works under NativeAOT.
/// </summary>
public sealed unsafe class BpfRingBuffer : IDisposable
{
    private const int EINTR = 4;

    private readonly object _pollLock = new();
    private GCHandle _self;
    private nint _rb;
    private RingRecordHandler? _handler;
    private Exception? _error;

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
    /// Waits up to <paramref name="timeoutMs"/> (-1: forever, 0: not at all) for records and hands every available one
    /// to <paramref name="onRecord"/>; returns how many. An exception of the handler stops the poll and is rethrown.
    /// </summary>
    public int Poll(RingRecordHandler onRecord, int timeoutMs)
    {
        ArgumentNullException.ThrowIfNull(onRecord);
        lock (_pollLock)
        {
            ObjectDisposedException.ThrowIf(_rb == 0, this);
            _handler = onRecord;
            _error = null;
            try
            {
                var n = LibBpf.ring_buffer__poll(_rb, timeoutMs);
                if (_error is { } e)
                {
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e);
                }

                if (n >= 0)
                {
                    return n;
                }

                // A signal woke the wait: nothing read, the caller polls again.
                return -n == EINTR ? 0 : throw new BpfException(-n, "ring_buffer__poll", null);
            }
            finally
            {
                _handler = null;
            }
        }
    }

    public void Dispose()
    {
        lock (_pollLock)
        {
            if (_rb != 0)
            {
                LibBpf.ring_buffer__free(_rb);
                _rb = 0;
                _self.Free();
            }
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnSample(nint ctx, byte* data, nuint size)
    {
        var self = (BpfRingBuffer)GCHandle.FromIntPtr(ctx).Target!;
        try
        {
            self._handler!(new ReadOnlySpan<byte>(data, checked((int)size)));
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
