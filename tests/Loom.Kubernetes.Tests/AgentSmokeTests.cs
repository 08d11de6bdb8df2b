using System.Diagnostics;
using Loom.Testing;

namespace Loom.Kubernetes.Tests;

/// <summary>
/// The published agent with "source": "kubernetes" against a replay of the fixtures, in a network namespace of its
/// own (smoke/agent-smoke.sh): the API's Services in iptables, the peer's route and FDB entry from its annotations and
/// LoomNode, /readyz, and the writes the agent sends back. Needs root and `make build`'s out/bin/loom.
/// </summary>
public sealed class AgentSmokeTests
{
    [Fact]
    public async Task The_agent_programs_what_the_API_serves_and_publishes_its_node()
    {
        var loom = Path.Combine(RepoPaths.Root, "out", "bin", "loom");
        Assert.True(Environment.UserName == "root" || Environment.GetEnvironmentVariable("USER") == "root", "needs root");
        Assert.True(File.Exists(loom), $"{loom} is missing: run make build");
        using var p = Process.Start(new ProcessStartInfo("timeout", ["150", "bash", Path.Combine(RepoPaths.Root, "tests", "Loom.Kubernetes.Tests", "smoke", "agent-smoke.sh")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        // timeout(1) sends SIGTERM at 150 s: the script's EXIT trap then removes its namespace and pins.
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var stderr = p.StandardError.ReadToEndAsync(limit.Token);
        var stdout = await p.StandardOutput.ReadToEndAsync(limit.Token);
        try
        {
            await p.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true); // past timeout's SIGTERM (on which the script's trap cleans up) as well
            throw;
        }

        Assert.True(p.ExitCode == 0, $"agent-smoke.sh failed:\n{stdout}\n{await stderr}");
        Assert.Contains("ok:   /readyz answers 200", stdout, StringComparison.Ordinal);
    }
}
