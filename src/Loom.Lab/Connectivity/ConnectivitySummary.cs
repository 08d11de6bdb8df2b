using System.Globalization;
using System.Text;

namespace Loom.Lab.Connectivity;

/// <summary>The lines the test prints, in Cilium's words: one per test as it ends, the summary, then the failing actions.</summary>
public static class ConnectivitySummary
{
    /// <summary>One line per test: ✅/❌ name and its passed actions, or ⏭️ and why it was skipped.</summary>
    public static string TestLine(TestResult test, int index, int count)
    {
        ArgumentNullException.ThrowIfNull(test);
        var n = string.Create(CultureInfo.InvariantCulture, $"[{index}/{count}]");
        return test.Outcome switch
        {
            TestOutcome.Skipped => $"⏭️  {n} {test.Name}: skipped: {test.SkipReason}",
            _ => string.Create(CultureInfo.InvariantCulture,
                $"{(test.Outcome == TestOutcome.Passed ? "✅" : "❌")} {n} {test.Name}: {test.Actions.Count(a => a.Passed)}/{test.Actions.Count} actions as expected"),
        };
    }

    /// <summary>
    /// "✅ All 12 tests (40 actions) successful, 1 test skipped" or "❌ 2/12 tests failed (3/40 actions), 1 test skipped",
    /// then each failing action with its command and output.
    /// </summary>
    public static string Summary(ConnectivityReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var ran = report.Tests.Where(t => t.Outcome != TestOutcome.Skipped).ToList();
        var failed = ran.Where(t => t.Outcome == TestOutcome.Failed).ToList();
        var actions = ran.Sum(t => t.Actions.Count);
        var failedActions = ran.Sum(t => t.Actions.Count(a => !a.Passed));
        var skipped = report.Tests.Count - ran.Count;
        var skippedText = skipped == 0 ? "" : string.Create(CultureInfo.InvariantCulture, $", {skipped} {Plural(skipped, "test")} skipped");
        var sb = new StringBuilder();
        if (ran.Count == 0)
        {
            sb.Append("❌ No test ran").Append(skippedText).Append('\n');
        }
        else if (failed.Count == 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $"✅ All {ran.Count} {Plural(ran.Count, "test")} ({actions} {Plural(actions, "action")}) successful{skippedText}\n");
        }
        else
        {
            sb.Append(CultureInfo.InvariantCulture, $"❌ {failed.Count}/{ran.Count} {Plural(ran.Count, "test")} failed ({failedActions}/{actions} {Plural(actions, "action")}){skippedText}\n");
        }

        foreach (var t in report.Tests.Where(t => t.Outcome == TestOutcome.Skipped))
        {
            sb.Append(CultureInfo.InvariantCulture, $"  ⏭️  {t.Name}: {t.SkipReason}\n");
        }

        foreach (var t in failed)
        {
            sb.Append(CultureInfo.InvariantCulture, $"Test [{t.Name}]:\n");
            foreach (var a in t.Actions.Where(a => !a.Passed))
            {
                sb.Append(CultureInfo.InvariantCulture, $"  ❌ {a.Action.Name}: {Why(a)}\n");
                sb.Append(CultureInfo.InvariantCulture, $"     {a.Action.Where}: {string.Join(' ', a.Action.Command.Select(Quote))}\n");
                foreach (var line in a.Output.TrimEnd().Split('\n').Where(l => l.Length > 0).Take(5))
                {
                    sb.Append("     | ").Append(line.TrimEnd('\r')).Append('\n');
                }
            }
        }

        return sb.ToString();
    }

    private static string Why(ActionResult a) =>
        a.Action.Where == ConnectivityFlows.FlowLog ? "the flow log disagrees"
        : !a.Action.ExpectSuccess ? "expected the connection to be denied, but it succeeded"
        : a.ExitCode == 0 ? $"the output does not show {a.Action.ExpectedOutput}"
        : string.Create(CultureInfo.InvariantCulture, $"expected success, command failed with exit code {a.ExitCode}");

    private static string Plural(int n, string word) => n == 1 ? word : word + "s";

    private static string Quote(string arg) => arg.Length > 0 && arg.All(c => char.IsAsciiLetterOrDigit(c) || "-_./:=@%,".Contains(c, StringComparison.Ordinal))
        ? arg : "'" + arg.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
