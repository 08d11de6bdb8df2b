using Loom.Core.Flows;
using static Loom.Core.Tests.Flows.FlowTestData;

namespace Loom.Core.Tests.Flows;

public sealed class FlowMatcherTests
{
    private static readonly Flow Drop = Syn() with
    {
        Type = "drop", Verdict = FlowNames.Dropped, DropReason = "POLICY_DENIED", Node = "n2",
        Destination = Pod("kube-system", "coredns-1", "10.244.2.9", 53, 102), Protocol = "UDP", TcpFlags = null,
    };

    private static readonly Flow Service = Syn() with
    {
        Type = "translation", Verdict = FlowNames.Translated, DestinationService = new FlowService("y", "web"), OriginalDestination = "10.96.0.20:80",
    };

    [Fact]
    public void Fields_are_anded_and_entries_of_a_list_ored()
    {
        Assert.True(FlowMatcher.Matches(Syn(), new FlowFilter { Namespaces = ["y", "z"], Verdicts = ["forwarded"] }));
        Assert.False(FlowMatcher.Matches(Syn(), new FlowFilter { Namespaces = ["y"], Verdicts = ["DROPPED"] }));
        Assert.True(FlowMatcher.Matches(Drop, new FlowFilter { DropReasons = ["POLICY_DENIED"], Protocols = ["udp"], Ports = [53], Nodes = ["n2"], Types = ["drop"] }));
        Assert.False(FlowMatcher.Matches(Drop, new FlowFilter { Ports = [54] }));
        Assert.False(FlowMatcher.Matches(Syn(), new FlowFilter { DropReasons = ["POLICY_DENIED"] }));
        Assert.True(FlowMatcher.Matches(Syn(), new FlowFilter()));
    }

    [Fact]
    public void Pods_match_by_namespace_and_name_prefix_on_the_side_asked_for()
    {
        Assert.True(FlowMatcher.Matches(Syn(), new FlowFilter { Pods = ["x/client"] }));
        Assert.True(FlowMatcher.Matches(Syn(), new FlowFilter { Pods = ["y/server"] }));
        Assert.True(FlowMatcher.Matches(Syn(), new FlowFilter { FromPods = ["x/client-7d9f"] }));
        Assert.False(FlowMatcher.Matches(Syn(), new FlowFilter { ToPods = ["x/client"] }));
        Assert.False(FlowMatcher.Matches(Syn(), new FlowFilter { Pods = ["client"] })); // the default namespace
        Assert.False(FlowMatcher.Matches(Syn(), new FlowFilter { Pods = ["y/client"] }));
    }

    [Fact]
    public void To_service_matches_the_destination_service()
    {
        Assert.True(FlowMatcher.Matches(Service, new FlowFilter { ToServices = ["y/web"] }));
        Assert.False(FlowMatcher.Matches(Service, new FlowFilter { ToServices = ["web"] }));
        Assert.True(FlowMatcher.Matches(Service, new FlowFilter { ToServices = ["y/we"] })); // a name prefix, as Hubble's
        Assert.False(FlowMatcher.Matches(Service, new FlowFilter { ToServices = ["y/webx"] }));
        Assert.False(FlowMatcher.Matches(Syn(), new FlowFilter { ToServices = ["y/web"] }));
    }

    [Fact]
    public void Exclude_removes_what_it_matches_and_an_empty_one_removes_nothing()
    {
        Flow[] flows = [Syn(1), Drop with { Seq = 2 }, Service with { Seq = 3 }];
        var notKubeSystem = FlowMatcher.Select(flows, new FlowQuery { Exclude = new FlowFilter { Namespaces = ["kube-system"] } });
        Assert.Equal([1L, 3L], notKubeSystem.Select(f => f.Seq));
        Assert.Equal(3, FlowMatcher.Select(flows, new FlowQuery { Exclude = new FlowFilter() }).Count);
        var forwardedNotTranslated = FlowMatcher.Select(flows, new FlowQuery
        {
            Include = new FlowFilter { Namespaces = ["y"] }, Exclude = new FlowFilter { Types = ["translation"] },
        });
        Assert.Equal([1L], forwardedNotTranslated.Select(f => f.Seq));
    }

    [Fact]
    public void Since_after_seq_and_last_narrow_to_the_newest()
    {
        var flows = Enumerable.Range(1, 30).Select(i => Syn(i) with { Time = T0.AddSeconds(i) }).ToList();
        Assert.Equal(Enumerable.Range(11, 20).Select(i => (long)i), FlowMatcher.Select(flows, new FlowQuery { Last = 20 }).Select(f => f.Seq));
        Assert.Equal([29L, 30L], FlowMatcher.Select(flows, new FlowQuery { Last = 2 }).Select(f => f.Seq));
        Assert.Equal(5, FlowMatcher.Select(flows, new FlowQuery { AfterSeq = 25, Last = 0 }).Count);
        Assert.Equal(11, FlowMatcher.Select(flows, new FlowQuery { Since = T0.AddSeconds(20), Last = 0 }).Count);
        Assert.Equal(30, FlowMatcher.Select(flows, new FlowQuery { Last = 0 }).Count);
        Assert.Equal(30, FlowMatcher.Select(flows, new FlowQuery()).Count); // no Last: all
    }
}
