using Loom.Datapath.Flows;
using Loom.Datapath.Routing;
using Loom.Datapath.Tests.Ebpf;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Tests.Flows;

/// <summary>The node's events directory goes when the last object goes, and removing an object does not bring it back.</summary>
public sealed class FlowEventPinsTests : IDisposable
{
    private readonly string _root = Path.Combine(BpfFs.DefaultRoot, EbpfLab.UniqueName("evpins"));

    private string Events => FlowEventMaps.DirectoryFor(_root);

    public void Dispose() => BpfFs.RemoveTree(_root);

    [Fact]
    public void Removing_an_object_by_its_pins_does_not_create_the_events_directory_again()
    {
        var options = new HostRoutingOptions
        {
            PinDirectory = Path.Combine(_root, "host_routing"),
            ObjectDirectory = EbpfLab.ObjectDirectory,
            EventsDirectory = Events,
        };
        FlowEventMaps.Ensure(Events, EbpfLab.ObjectDirectory);
        using (var first = new BpfHostRouting(options))
        {
            _ = first.Loaded; // pins its maps, shares the events maps
        }

        FlowEventMaps.Remove(Events);
        using (var again = new BpfHostRouting(options)) // a later run, which only cleans up
        {
            again.Remove();
        }

        Assert.False(Directory.Exists(options.PinDirectory));
        Assert.False(Directory.Exists(Events), "Remove() loaded the object with the shared pins and created them again");
    }

    [Fact]
    public void The_events_directory_goes_only_when_no_object_is_left_and_events_are_off()
    {
        FlowEventMaps.Ensure(Events, EbpfLab.ObjectDirectory);
        Directory.CreateDirectory(Path.Combine(_root, "policy"));
        Assert.False(FlowEventMaps.RemoveIfUnused(_root)); // policy still there
        Directory.Delete(Path.Combine(_root, "policy"));

        new FlowEventConfig(true, FlowAggregation.Medium, FlowEventConfig.DefaultInterval).Write(Events, EbpfLab.ObjectDirectory);
        Assert.False(FlowEventMaps.RemoveIfUnused(_root)); // on: the agent reads it
        Assert.True(Directory.Exists(Events));

        new FlowEventConfig(false, FlowAggregation.Medium, FlowEventConfig.DefaultInterval).Write(Events, EbpfLab.ObjectDirectory);
        Assert.True(FlowEventMaps.RemoveIfUnused(_root));
        Assert.False(Directory.Exists(Events));
        Assert.False(FlowEventMaps.RemoveIfUnused(_root)); // nothing left: no-op
    }
}
