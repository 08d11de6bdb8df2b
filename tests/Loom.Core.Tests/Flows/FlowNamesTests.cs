using Loom.Core.Flows;

namespace Loom.Core.Tests.Flows;

public sealed class FlowNamesTests
{
    [Theory]
    [InlineData(133, "POLICY_DENIED")]
    [InlineData(181, "POLICY_DENIED")]
    [InlineData(158, "SERVICE_BACKEND_NOT_FOUND")]
    [InlineData(155, "CT_MAP_INSERTION_FAILED")]
    [InlineData(132, "INVALID_SOURCE_IP")]
    [InlineData(139, "UNSUPPORTED_L3_PROTOCOL")]
    [InlineData(200, "DROP_REASON_200")]
    public void Drop_reasons_have_hubbles_names(byte reason, string name) => Assert.Equal(name, FlowNames.Drop(reason));

    [Fact]
    public void Every_observation_point_has_its_name()
    {
        Assert.Equal(
            ["unknown", "from-endpoint", "to-endpoint", "to-stack", "to-overlay", "from-overlay", "to-network", "from-network", "socket"],
            Enum.GetValues<ObservationPoint>().Select(FlowNames.Point));
    }

    [Theory]
    [InlineData(0x02, "SYN")]
    [InlineData(0x12, "SYN, ACK")]
    [InlineData(0x11, "ACK, FIN")]
    [InlineData(0x18, "ACK, PSH")]
    [InlineData(0x14, "ACK, RST")]
    [InlineData(0x00, null)]
    public void Tcp_flags_in_hubbles_order(byte flags, string? text) => Assert.Equal(text, FlowNames.TcpFlags(flags));

    [Fact]
    public void Identities_protocols_and_types()
    {
        Assert.Equal("ID:12345", FlowNames.Identity(12345));
        Assert.Equal("ID:102", FlowNames.Identity(102));
        Assert.Equal("world", FlowNames.Identity(2));
        Assert.Equal("TCP", FlowNames.Protocol(6));
        Assert.Equal("47", FlowNames.Protocol(47));
        Assert.Equal("policy-verdict", FlowNames.Type(FlowEventType.Policy));
        Assert.Equal("DROPPED", FlowNames.Canonical("dropped", FlowNames.Verdicts));
        Assert.Null(FlowNames.Canonical("denied", FlowNames.Verdicts));
    }
}
