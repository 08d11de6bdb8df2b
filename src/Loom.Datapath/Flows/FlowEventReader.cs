using Loom.Core.Flows;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Flows;

/// <summary>
/// The agent's end of the node's flow-event ring: <see cref="Poll"/> decodes every event the programs wrote (called from
/// ONE thread), <see cref="Lost"/> counts those that did not fit. Opening creates the shared maps when absent, so the
/// reader can start before any program is loaded.
/// </summary>
public sealed class FlowEventReader : IDisposable
{
    private readonly BpfMap _ring;
    private readonly BpfMap _lost;
    private readonly BpfRingBuffer _consumer;

    private FlowEventReader(BpfMap ring, BpfMap lost, BpfRingBuffer consumer)
    {
        _ring = ring;
        _lost = lost;
        _consumer = consumer;
    }

    /// <summary>Opens the ring and the lost counter pinned in <paramref name="eventsDirectory"/> (creating them if absent).</summary>
    public static FlowEventReader Open(string eventsDirectory, string? objectDirectory = null)
    {
        FlowEventMaps.Ensure(eventsDirectory, objectDirectory);
        BpfMap? ring = null, lost = null;
        try
        {
            ring = BpfMap.OpenPinned(Path.Combine(eventsDirectory, FlowEventMaps.Ring));
            lost = BpfMap.OpenPinned(Path.Combine(eventsDirectory, FlowEventMaps.Lost));
            lost.AsPerCpu<uint, ulong>(); // checks its shape now rather than at the first read
            return new FlowEventReader(ring, lost, BpfRingBuffer.Open(ring));
        }
        catch
        {
            ring?.Dispose();
            lost?.Dispose();
            throw;
        }
    }

    /// <summary>Events the programs could not put in the ring (it was full), summed over the CPUs.</summary>
    public long Lost => (long)_lost.AsPerCpu<uint, ulong>().Lookup(0).Aggregate(0UL, (a, b) => a + b);

    /// <summary>
    /// Waits up to <paramref name="timeoutMs"/> (-1: until one comes) for events and hands each to
    /// <paramref name="onEvent"/>; returns how many. A record of another size than <see cref="FlowEvent.Size"/> (a
    /// program of another version) is skipped, not decoded.
    /// </summary>
    public int Poll(Action<FlowEvent> onEvent, int timeoutMs)
    {
        ArgumentNullException.ThrowIfNull(onEvent);
        return _consumer.Poll(record =>
        {
            if (record.Length == FlowEvent.Size)
            {
                onEvent(FlowEvent.Decode(record));
            }
        }, timeoutMs);
    }

    public void Dispose()
    {
        _consumer.Dispose();
        _ring.Dispose();
        _lost.Dispose();
    }
}
