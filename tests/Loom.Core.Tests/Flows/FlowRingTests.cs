using Loom.Core.Flows;
using static Loom.Core.Tests.Flows.FlowTestData;

namespace Loom.Core.Tests.Flows;

public sealed class FlowRingTests
{
    [Fact]
    public void Numbers_each_flow_and_keeps_the_newest_capacity()
    {
        var ring = new FlowRing(4);
        Assert.Empty(ring.Snapshot());
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(i + 1, ring.Add(Syn()).Seq);
        }

        Assert.Equal(10, ring.LastSeq);
        Assert.Equal([7L, 8L, 9L, 10L], ring.Snapshot().Select(f => f.Seq));
        Assert.Equal([9L, 10L], ring.Snapshot(afterSeq: 8).Select(f => f.Seq));
        Assert.Empty(ring.Snapshot(afterSeq: 10));
        Assert.Equal([10L], ring.Query(new FlowQuery { AfterSeq = 8, Last = 1 }).Select(f => f.Seq));
    }

    [Fact]
    public void Default_capacity_is_hubbles()
    {
        Assert.Equal(4095, new FlowRing().Capacity);
        Assert.Throws<ArgumentOutOfRangeException>(() => new FlowRing(0));
    }

    [Fact]
    public async Task Readers_see_whole_consecutive_runs_while_one_writer_adds()
    {
        var ring = new FlowRing(64);
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(() =>
        {
            for (var i = 0; i < 50_000; i++)
            {
                ring.Add(Syn());
            }
        });
        while (!writer.IsCompleted)
        {
            var seqs = ring.Snapshot().Select(f => f.Seq).ToList();
            Assert.True(seqs.Count <= 64);
            Assert.True(seqs.Zip(seqs.Skip(1)).All(p => p.Second == p.First + 1), "a snapshot skips or repeats a number");
        }

        await writer;
        Assert.Equal(50_000, ring.LastSeq);
    }
}
