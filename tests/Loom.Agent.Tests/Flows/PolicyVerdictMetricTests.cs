using Loom.Agent.Policy;
using Loom.Datapath.Policy;

namespace Loom.Agent.Tests.Flows;

/// <summary>loom_policy_verdicts_total's action: only verdicts are allowed / dropped.</summary>
public sealed class PolicyVerdictMetricTests
{
    private static readonly string[] Actions = ["allowed", "dropped", "deferred", "passed"];

    [Theory]
    [InlineData(PolicyReason.AllowedByRule, "allowed")]
    [InlineData(PolicyReason.AllowedEstablished, "allowed")]
    [InlineData(PolicyReason.AllowedReply, "allowed")]
    [InlineData(PolicyReason.AllowedNotEnforced, "allowed")]
    [InlineData(PolicyReason.AllowedHost, "allowed")]
    [InlineData(PolicyReason.AllowedRelated, "allowed")]
    [InlineData(PolicyReason.DeferredAllowed, "allowed")]
    [InlineData(PolicyReason.DroppedIngress, "dropped")]
    [InlineData(PolicyReason.DroppedEgress, "dropped")]
    [InlineData(PolicyReason.DeferredDropped, "dropped")]
    [InlineData(PolicyReason.DroppedSpoofed, "dropped")]
    [InlineData(PolicyReason.DroppedNotIpv4, "dropped")]
    [InlineData(PolicyReason.Deferred, "deferred")]
    [InlineData(PolicyReason.PassedNotIpv4, "passed")]
    [InlineData(PolicyReason.PassedUnmanaged, "passed")]
    [InlineData(PolicyReason.PassedDisabled, "passed")]
    [InlineData(PolicyReason.PassedFragment, "passed")]
    public void Each_reason_has_its_action(PolicyReason reason, string action) => Assert.Equal(action, PolicyController.Action(reason));

    [Fact]
    public void A_denied_service_packet_is_never_counted_as_allowed()
    {
        // Counted at the ClusterIP (Deferred) and again after the DNAT (DeferredDropped): one verdict, dropped.
        Assert.Equal(["deferred", "dropped"], new[] { PolicyReason.Deferred, PolicyReason.DeferredDropped }.Select(PolicyController.Action));
        Assert.All(Enum.GetValues<PolicyReason>(), r => Assert.Contains(PolicyController.Action(r), Actions));
    }
}
