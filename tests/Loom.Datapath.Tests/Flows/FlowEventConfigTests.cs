using Loom.Datapath.Flows;

namespace Loom.Datapath.Tests.Flows;

public sealed class FlowEventConfigTests
{
    [Fact]
    public void The_events_directory_is_beside_the_objects_pins()
    {
        Assert.Equal("/sys/fs/bpf/loom/events", FlowEventMaps.DirectoryFor("/sys/fs/bpf/loom"));
        Assert.Throws<ArgumentException>(() => FlowEventMaps.DirectoryFor(""));
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(1000u)]
    [InlineData(4097u)]
    public void A_ring_size_that_is_not_a_power_of_two_pages_is_refused(uint bytes) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => FlowEventMaps.Ensure("/sys/fs/bpf/loom-never-created", ringBytes: bytes));

    [Fact]
    public void Relative_events_directories_and_bad_configs_are_refused_before_anything_is_created()
    {
        Assert.Throws<ArgumentException>(() => FlowEventMaps.Ensure("events"));
        Assert.Throws<ArgumentException>(() => FlowEventMaps.Remove("events"));
        const string never = "/sys/fs/bpf/loom-never-created";
        Assert.Throws<ArgumentException>(() => new FlowEventConfig(true, (FlowAggregation)1, FlowEventConfig.DefaultInterval).Write(never));
        Assert.Throws<ArgumentException>(() => new FlowEventConfig(true, FlowAggregation.Medium, TimeSpan.FromMilliseconds(1500)).Write(never));
        Assert.Throws<ArgumentException>(() => new FlowEventConfig(true, FlowAggregation.Medium, TimeSpan.Zero).Write(never));
        Assert.False(Directory.Exists(never));
    }
}
