using Loom.Core.Flows;
using Loom.Lab.Connectivity;

namespace Loom.Lab.Tests.Connectivity;

/// <summary>The pure parts of the connectivity test: --test selection and the summary's words.</summary>
public sealed class ConnectivitySummaryTests
{
    private static readonly IReadOnlyList<(string Name, string Group)> Tests = ConnectivityTest.Tests(world: false);

    private static List<string> Selected(params string[] selectors)
    {
        var s = ConnectivitySelection.Parse(selectors);
        return [.. Tests.Where(t => s.Selects(t.Name, t.Group)).Select(t => t.Name)];
    }

    [Fact]
    public void No_selector_runs_every_test_and_world_only_with_a_target()
    {
        Assert.Equal(Tests.Select(t => t.Name), Selected());
        Assert.DoesNotContain("pod-to-world", Selected());
        Assert.Contains(("pod-to-world", "world"), ConnectivityTest.Tests(world: true));
    }

    [Fact]
    public void Names_prefixes_groups_and_exclusions_select()
    {
        Assert.Equal(["pod-to-pod-same-node"], Selected("pod-to-pod-same-node"));
        Assert.Equal(["pod-to-pod-same-node", "pod-to-pod-other-node"], Selected("pod-to-pod"));
        Assert.Equal(["pod-to-pod-same-node", "pod-to-pod-other-node", "all-ingress-deny"], Selected("pod-to-pod", "all-ingress-deny"));
        Assert.Equal(["all-ingress-deny", "all-egress-deny", "echo-ingress-from-client2", "client-egress-to-echo-port"], Selected("policies"));
        Assert.Equal(["pod-to-pod-same-node"], Selected("pod-to-pod,!pod-to-pod-other"));
        var withoutPolicies = Selected("!policies", "!nodeport", "!no-unexpected-drops");
        Assert.Equal(7, withoutPolicies.Count);
        Assert.DoesNotContain("all-ingress-deny", withoutPolicies);
        Assert.Empty(Selected("pod-to-pod", "!pod-to-pod"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("!")]
    [InlineData("pod-*")]
    [InlineData("!!pod-to-pod")]
    [InlineData("pod to pod")]
    public void Bad_selectors_are_refused(string selector)
    {
        var e = Assert.Throws<ArgumentException>(() => ConnectivitySelection.Parse([selector]));
        Assert.Contains("--test", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_selector_naming_no_test_is_reported()
    {
        Assert.Equal(["pod-to-nowhere", "!typo"], ConnectivitySelection.Parse(["pod-to-nowhere", "pod-to-pod", "!typo"]).Unknown(Tests));
        Assert.Empty(ConnectivitySelection.Parse(["no-policies", "!pod-to-host"]).Unknown(Tests));
    }

    private static ActionResult Action(string name, bool expectSuccess, int exitCode, string output = "") =>
        new(new ConnectivityAction(name, "pod loom-connectivity-test/client", ["curl", "--max-time", "5", "http://10.244.2.5:8080/"], expectSuccess, []), exitCode, output);

    [Fact]
    public void All_passed_reads_as_cilium_says_it_with_skips_and_their_reasons()
    {
        var report = new ConnectivityReport(
        [
            TestResult.Ran("pod-to-pod-same-node", [Action("a", true, 0), Action("b", true, 0)]),
            TestResult.Ran("all-ingress-deny", [Action("c", false, 28)]),
            TestResult.Skipped("nodeport", "no NodePort"),
        ]);
        Assert.True(report.Success);
        var text = ConnectivitySummary.Summary(report);
        Assert.StartsWith("✅ All 2 tests (3 actions) successful, 1 test skipped\n", text, StringComparison.Ordinal);
        Assert.Contains("⏭️  nodeport: no NodePort", text, StringComparison.Ordinal);
        Assert.Equal("✅ [1/3] pod-to-pod-same-node: 2/2 actions as expected", ConnectivitySummary.TestLine(report.Tests[0], 1, 3));
        Assert.Equal("⏭️  [3/3] nodeport: skipped: no NodePort", ConnectivitySummary.TestLine(report.Tests[2], 3, 3));
    }

    [Fact]
    public void Failures_name_the_test_the_action_its_command_and_output()
    {
        var report = new ConnectivityReport(
        [
            TestResult.Ran("pod-to-pod-same-node", [Action("a", true, 0)]),
            TestResult.Ran("pod-to-pod-other-node", [Action("client -> echo-other-node", true, 28, "curl: (28) Connection timed out after 2001 milliseconds"), Action("b", true, 0)]),
            TestResult.Ran("all-egress-deny", [Action("client -> echo-same-node", false, 0)]),
        ]);
        Assert.False(report.Success);
        var text = ConnectivitySummary.Summary(report);
        Assert.StartsWith("❌ 2/3 tests failed (2/4 actions)\n", text, StringComparison.Ordinal);
        Assert.Contains("""
            Test [pod-to-pod-other-node]:
              ❌ client -> echo-other-node: expected success, command failed with exit code 28
                 pod loom-connectivity-test/client: curl --max-time 5 http://10.244.2.5:8080/
                 | curl: (28) Connection timed out after 2001 milliseconds
            """, text, StringComparison.Ordinal);
        Assert.Contains("❌ client -> echo-same-node: expected the connection to be denied, but it succeeded", text, StringComparison.Ordinal);
        Assert.DoesNotContain("Test [pod-to-pod-same-node]", text, StringComparison.Ordinal);
        Assert.Equal("❌ [2/3] pod-to-pod-other-node: 1/2 actions as expected", ConnectivitySummary.TestLine(report.Tests[1], 2, 3));
    }

    [Fact]
    public void A_run_where_everything_was_skipped_is_no_success()
    {
        var report = new ConnectivityReport([TestResult.Skipped("nodeport", "no NodePort")]);
        Assert.False(report.Success);
        Assert.StartsWith("❌ No test ran, 1 test skipped", ConnectivitySummary.Summary(report), StringComparison.Ordinal);
    }

    [Fact]
    public void A_dns_answer_must_carry_the_services_address()
    {
        var resolve = new ConnectivityAction("resolve", "pod x/client", ["nslookup", "echo"], true, []) { ExpectedOutput = "10.96.0.20" };
        Assert.True(new ActionResult(resolve, 0, "Name: echo\nAddress: 10.96.0.20").Passed);
        Assert.False(new ActionResult(resolve, 0, "Name: echo\nAddress: 10.96.0.21").Passed);
    }

    [Fact]
    public void A_flow_belongs_to_an_action_when_it_is_between_its_pods_and_no_other_test_pod()
    {
        static FlowPeer Pod(string name) => new() { Namespace = ConnectivityDeployment.Namespace, Pod = name, Ip = "10.244.1.9" };
        var host = new FlowPeer { Ip = "192.168.10.101" };
        var service = new FlowPeer { Ip = "10.96.0.3" };
        string[] peers = ["loom-connectivity-test/client", "loom-connectivity-test/echo-same-node"];
        Assert.True(ConnectivityFlows.Between(new Flow { Source = Pod("client"), Destination = Pod("echo-same-node") }, peers));
        Assert.True(ConnectivityFlows.Between(new Flow { Source = Pod("echo-same-node"), Destination = Pod("client"), IsReply = true }, peers));
        Assert.True(ConnectivityFlows.Between(new Flow { Source = Pod("client"), Destination = service }, peers));
        Assert.True(ConnectivityFlows.Between(new Flow { Source = host, Destination = Pod("echo-same-node") }, peers));
        Assert.False(ConnectivityFlows.Between(new Flow { Source = Pod("client2"), Destination = Pod("echo-same-node") }, peers));
        Assert.False(ConnectivityFlows.Between(new Flow { Source = Pod("client"), Destination = Pod("echo-other-node") }, peers));
        Assert.False(ConnectivityFlows.Between(new Flow { Source = host, Destination = service }, peers));
    }

    [Fact]
    public void A_flow_check_failure_says_the_flow_log_disagrees()
    {
        var curl = new ConnectivityAction("client -> echo-same-node", "pod x/client", ["curl"], true, ["x/client"]);
        var report = new ConnectivityReport([TestResult.Ran("no-unexpected-drops",
            [new ActionResult(ConnectivityFlows.Check("pod-to-pod-same-node", curl), 1, "unexpected drops:\nk8s-w1: ... DROPPED POLICY_DENIED")])]);
        var text = ConnectivitySummary.Summary(report);
        Assert.Contains("❌ pod-to-pod-same-node: client -> echo-same-node: no drop: the flow log disagrees", text, StringComparison.Ordinal);
        Assert.Contains("flow log: loom lab observe --namespace loom-connectivity-test --verdict DROPPED -o compact", text, StringComparison.Ordinal);
        Assert.Contains("| k8s-w1: ... DROPPED POLICY_DENIED", text, StringComparison.Ordinal);
    }
}
