namespace Loom.Core.Flows;

/// <summary>
/// The agent's last flows (Hubble's ring of 4095): fixed capacity, the oldest overwritten, each flow numbered as it is
/// added so a follower asks for what came after the last number it saw. Safe for one writer and many readers.
/// </summary>
public sealed class FlowRing
{
    public const int DefaultCapacity = 4095;

    private readonly Flow[] _slots;
    private readonly Lock _gate = new();
    private long _seq;

    public FlowRing(int capacity = DefaultCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _slots = new Flow[capacity];
    }

    public int Capacity => _slots.Length;

    /// <summary>The number of the newest flow (0 before the first).</summary>
    public long LastSeq
    {
        get
        {
            lock (_gate)
            {
                return _seq;
            }
        }
    }

    /// <summary>Keeps <paramref name="flow"/> under the next number; returns it as kept.</summary>
    public Flow Add(Flow flow)
    {
        lock (_gate)
        {
            var kept = flow with { Seq = ++_seq };
            _slots[(int)((_seq - 1) % _slots.Length)] = kept;
            return kept;
        }
    }

    /// <summary>The flows kept now numbered after <paramref name="afterSeq"/>, oldest first.</summary>
    public List<Flow> Snapshot(long afterSeq = 0)
    {
        lock (_gate)
        {
            var first = Math.Max(_seq - Math.Min(_seq, _slots.Length), Math.Max(afterSeq, 0)) + 1;
            var list = new List<Flow>((int)Math.Max(0, _seq - first + 1));
            for (var s = first; s <= _seq; s++)
            {
                list.Add(_slots[(int)((s - 1) % _slots.Length)]);
            }

            return list;
        }
    }

    public List<Flow> Query(FlowQuery query) => FlowMatcher.Select(Snapshot(query.AfterSeq), query);
}
