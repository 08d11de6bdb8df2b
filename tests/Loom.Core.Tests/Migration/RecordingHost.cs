using Loom.Core.Migration;

namespace Loom.Core.Tests.Migration;

/// <summary>A host that records each step it is asked to run; verification fails with <see cref="FailCheck"/> when set.</summary>
internal sealed class RecordingHost : INodeMigrationHost
{
    public List<string> Calls { get; } = [];

    /// <summary>The check verification reports failed; null: it passes.</summary>
    public string? FailCheck { get; set; }

    /// <summary>The 1-based call that throws (an interruption), once; 0: none.</summary>
    public int InterruptAtCall { get; set; }

    /// <summary>Runs at each call before it is recorded, to look at the store as the step sees it.</summary>
    public Func<string, Task>? OnCall { get; set; }

    public Task CordonAsync(string node, CancellationToken cancellationToken) => Record("cordon " + node);

    public Task DrainAsync(string node, CancellationToken cancellationToken) => Record("drain " + node);

    public Task RestartAgentAsync(string node, CancellationToken cancellationToken) => Record("restart-agent " + node);

    public Task RebootAsync(string node, CancellationToken cancellationToken) => Record("reboot " + node);

    public async Task<string?> VerifyAsync(string node, string network, CancellationToken cancellationToken)
    {
        await Record($"verify {node} {network}");
        return FailCheck;
    }

    public Task UncordonAsync(string node, CancellationToken cancellationToken) => Record("uncordon " + node);

    public Task RestoreCniConfigAsync(string node, CancellationToken cancellationToken) => Record("restore-cni-config " + node);

    public Task DeleteTestPodAsync(string node, CancellationToken cancellationToken) => Record("delete-test-pod " + node);

    /// <summary>The calls with a repeated call (a step run again after an interruption) counted once.</summary>
    public IReadOnlyList<string> Distinct() => [.. Calls.Where((c, i) => i == 0 || Calls[i - 1] != c)];

    private async Task Record(string call)
    {
        if (OnCall is { } observe)
        {
            await observe(call);
        }

        Calls.Add(call);
        if (Calls.Count == InterruptAtCall)
        {
            InterruptAtCall = 0;
            throw new IOException($"interrupted during '{call}'");
        }
    }
}
