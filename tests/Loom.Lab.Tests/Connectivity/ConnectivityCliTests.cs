using System.Diagnostics;
using Loom.Testing;

namespace Loom.Lab.Tests.Connectivity;

/// <summary>`loom connectivity test` refusals that need no lab: it says it needs one, and bad arguments are exit 2 with the flag named.</summary>
public sealed class ConnectivityCliTests
{
    private static readonly string NoLab = $"/tmp/loom-conn-no-lab-{Environment.ProcessId}";

    [Theory]
    [InlineData("connectivity")]
    [InlineData("lab")]
    public async Task Without_a_lab_it_says_it_needs_one(string form)
    {
        string[] args = form == "lab" ? ["lab", "--lab-dir", NoLab, "connectivity", "test"] : ["connectivity", "test", "--lab-dir", NoLab];
        var (code, _, err) = await Loom(args);
        Assert.Equal(1, code);
        Assert.Contains("needs a running lab", err, StringComparison.Ordinal);
        Assert.Contains("loom lab up", err, StringComparison.Ordinal);
        Assert.False(Directory.Exists(NoLab));
    }

    [Theory]
    [InlineData("--test", "pod-*", "--test 'pod-*'")]
    [InlineData("--test", "!", "no test name")]
    [InlineData("--external-target", "1.1.1.1", "is not inside the lab")]
    [InlineData("--external-target", "192.168.10.1:x", "an IPv4 address or IPv4:PORT expected")]
    public async Task Bad_arguments_are_refused_before_anything_is_deployed(string flag, string value, string message)
    {
        var (code, _, err) = await Loom(["connectivity", "test", "--lab-dir", NoLab, flag, value]);
        Assert.Equal(2, code);
        Assert.Contains(message, err, StringComparison.Ordinal);
    }

    private static async Task<(int Code, string Out, string Err)> Loom(string[] args)
    {
        var psi = new ProcessStartInfo(Path.Combine(CniRunner.BinDir, "loom")) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await p.WaitForExitAsync(cts.Token);
        return (p.ExitCode, await stdout, await stderr);
    }
}
