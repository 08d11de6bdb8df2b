using System.Text.Json;
using Loom.Core.AgentApi;

namespace Loom.Core.Tests.AgentApi;

/// <summary>The agent socket's request decoder: what it returns holds what the handlers assume; anything else is a JsonException.</summary>
public class AgentRequestTests
{
    [Fact]
    public void A_registration_decodes()
    {
        var r = AgentRequest.Decode("""{"op":"endpoint-add","endpoint":{"containerId":"c1","ips":["10.244.1.5"],"labels":{"app":"web"}}}""")!;
        Assert.Equal("endpoint-add", r.Op);
        Assert.Equal("c1", r.Endpoint!.ContainerId);
        Assert.Equal("default", r.Endpoint.Namespace);
        Assert.Equal("eth0", r.Endpoint.Interface);
    }

    [Fact]
    public void Null_fields_read_as_their_defaults()
    {
        var ep = AgentRequest.Decode("""{"op":"endpoint-del","endpoint":{"containerId":"c","namespace":null,"name":null,"interface":null,"ips":null,"labels":null}}""")!.Endpoint!;
        Assert.Equal(("default", "", "eth0"), (ep.Namespace, ep.Name, ep.Interface));
        Assert.Empty(ep.Ips);
        Assert.Empty(ep.Labels);
    }

    [Theory]
    [InlineData("")]
    [InlineData("null")]
    public void An_empty_line_is_no_request(string line) => Assert.Null(AgentRequest.Decode(line));

    [Theory]
    [InlineData("""{"op":null}""")]
    [InlineData("""{"op":"endpoint-add","endpoint":{"containerId":null}}""")]
    [InlineData("""{"op":"endpoint-add","endpoint":{"containerId":""}}""")]
    [InlineData("""{"op":"endpoint-add","endpoint":{"containerId":"c","ips":["not-an-ip"]}}""")]
    [InlineData("""{"op":"endpoint-add","endpoint":{"containerId":"c","ips":[null]}}""")]
    [InlineData("""{"op":"endpoint-add","endpoint":{"containerId":"c","labels":{"a":null}}}""")]
    public void Requests_the_handlers_could_not_take_are_bad_requests(string line) =>
        Assert.ThrowsAny<JsonException>(() => AgentRequest.Decode(line));
}
