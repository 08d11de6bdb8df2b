using System.Text.Json;
using Loom.Core.AgentApi;
using Loom.Core.Flows;

namespace Loom.Core.Tests.Flows;

public sealed class FlowQueryDecodeTests
{
    [Fact]
    public void Absent_lists_decode_empty_so_the_matcher_can_read_them()
    {
        var q = AgentRequest.Decode("""{"op":"flows","flows":{"include":{"pods":["x/a"]},"exclude":{"namespaces":["kube-system"]},"last":5}}""")!.Flows!;
        Assert.Equal(["x/a"], q.Include.Pods);
        Assert.Empty(q.Include.Namespaces);
        Assert.Empty(q.Exclude!.Pods);
        Assert.Equal(5, q.Last);
        var flow = new Flow { Seq = 1, Source = new FlowPeer { Namespace = "x", Pod = "a" } };
        Assert.True(FlowMatcher.Matches(flow, q));
        Assert.Empty(AgentRequest.Decode("""{"op":"flows","flows":{}}""")!.Flows!.Include.Types);
    }

    [Fact]
    public void No_last_means_all_in_json_as_in_code_and_a_query_sends_its_count()
    {
        Assert.Equal(0, AgentRequest.Decode("""{"op":"flows","flows":{}}""")!.Flows!.Last);
        Assert.Equal(0, new FlowQuery().Last);
        Assert.Equal(20, AgentRequest.Decode(Sent(new FlowQuery { Last = 20 }))!.Flows!.Last);
        Assert.Contains("\"last\":0", Sent(new FlowQuery { Last = 0 }), StringComparison.Ordinal);
    }

    [Fact]
    public void A_negative_count_is_a_bad_request()
    {
        Assert.Throws<JsonException>(() => AgentRequest.Decode("""{"op":"flows","flows":{"last":-1}}"""));
        Assert.Throws<JsonException>(() => AgentRequest.Decode("""{"op":"flows","flows":{"afterSeq":-3}}"""));
    }

    private static string Sent(FlowQuery query) =>
        JsonSerializer.Serialize(new AgentRequest { Op = "flows", Flows = query }, AgentApiJsonContext.Default.AgentRequest);
}
