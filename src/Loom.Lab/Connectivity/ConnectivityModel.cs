namespace Loom.Lab.Connectivity;

/// <summary>One command of a test, run inside a pod or a node, and whether it must succeed or be refused/dropped.</summary>
/// <param name="Name">What it checks, e.g. <c>client -&gt; echo-other-node (10.244.2.5:8080)</c>.</param>
/// <param name="Where">Where it runs: <c>pod NS/NAME</c> or <c>node NAME</c>.</param>
/// <param name="FlowPeers">The pods ("NS/NAME") whose flows during the action tell whether it was dropped; empty: no flow check.</param>
public sealed record ConnectivityAction(string Name, string Where, IReadOnlyList<string> Command, bool ExpectSuccess, IReadOnlyList<string> FlowPeers)
{
    /// <summary>Text a successful command must print too (a DNS answer's address).</summary>
    public string? ExpectedOutput { get; init; }
}

/// <summary>What one action did: its exit code and output.</summary>
public sealed record ActionResult(ConnectivityAction Action, int ExitCode, string Output)
{
    public bool Succeeded => ExitCode == 0 && (Action.ExpectedOutput is not { } text || Output.Contains(text, StringComparison.Ordinal));

    /// <summary>The command did what was expected.</summary>
    public bool Passed => Succeeded == Action.ExpectSuccess;
}

public enum TestOutcome
{
    Passed,
    Failed,
    Skipped,
}

/// <summary>One test (a scenario): its actions' results, or why it was skipped.</summary>
public sealed record TestResult(string Name, TestOutcome Outcome, IReadOnlyList<ActionResult> Actions, string? SkipReason = null)
{
    public static TestResult Skipped(string name, string reason) => new(name, TestOutcome.Skipped, [], reason);

    public static TestResult Ran(string name, IReadOnlyList<ActionResult> actions) =>
        new(name, actions.All(a => a.Passed) ? TestOutcome.Passed : TestOutcome.Failed, actions);
}

/// <summary>Every test's result, in the order they ran.</summary>
public sealed record ConnectivityReport(IReadOnlyList<TestResult> Tests)
{
    public bool Success => Tests.All(t => t.Outcome != TestOutcome.Failed) && Tests.Any(t => t.Outcome == TestOutcome.Passed);

    public TestResult? Test(string name) => Tests.FirstOrDefault(t => t.Name == name);
}
