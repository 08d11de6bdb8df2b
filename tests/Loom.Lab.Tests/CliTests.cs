using System.Diagnostics;
using Loom.Testing;

namespace Loom.Lab.Tests;

/// <summary>`loom lab ...` as a user runs it (out/bin/loom), on a per-test lab directory and prefix.</summary>
[Collection(SequentialLab.Name)]
public sealed class CliTests
{
    [Fact]
    public async Task Up_status_node_exec_pod_and_down_through_the_cli()
    {
        var o = TestLab.Options();
        string[] lab = ["lab", "--lab-dir", o.LabDir, "--prefix", o.Prefix];
        try
        {
            var up = await Loom([.. lab, "up", "--nodes", "2"]);
            Assert.True(up.Code == 0, up.ToString());
            Assert.Contains("agent on k8s-w1 started", up.Out, StringComparison.Ordinal);
            Assert.Contains("lab up: 2 nodes Ready (sqlite store)", up.Out, StringComparison.Ordinal);

            var status = await Loom([.. lab, "status"]);
            Assert.Equal(0, status.Code);
            Assert.Matches(@"k8s-w1\s+\S+k8s-w1\s+192\.168\.10\.101\s+\d+ alive\s+yes\s+10\.244\.1\.0/24", status.Out);

            var exec = await Loom([.. lab, "node", "exec", "k8s-w1", "--", "ip", "-br", "addr", "show", "eth1"]);
            Assert.Contains("192.168.10.101/24", exec.Out, StringComparison.Ordinal);
            Assert.Equal(3, (await Loom([.. lab, "node", "exec", "k8s-ctr", "--", "sh", "-c", "exit 3"])).Code);

            var add = await Loom([.. lab, "pod", "add", "p1", "--node", "k8s-w1"]);
            Assert.True(add.Code == 0, add.ToString());
            Assert.Contains("pod p1 on k8s-w1: 10.244.1.", add.Out, StringComparison.Ordinal);
            Assert.Contains("10.244.1.", (await Loom([.. lab, "exec", "p1", "--", "ip", "-br", "addr", "show", "eth0"])).Out, StringComparison.Ordinal);
            Assert.Contains("p1", (await Loom([.. lab, "pod", "list"])).Out, StringComparison.Ordinal);
            Assert.Equal(0, (await Loom([.. lab, "pod", "del", "p1"])).Code);
            Assert.NotEqual(0, (await Loom([.. lab, "exec", "p1", "--", "true"])).Code);

            Assert.Equal(0, (await Loom([.. lab, "down"])).Code);
            Assert.Empty(TestLab.Namespaces(o.Prefix));
            var again = await Loom([.. lab, "down"]);
            Assert.Equal(0, again.Code);
            Assert.Contains("nothing to do", again.Out, StringComparison.Ordinal);
            Assert.Equal(1, (await Loom([.. lab, "status"])).Code);
        }
        finally
        {
            await Lab.DownAsync(o.LabDir, o.Prefix);
        }
    }

    private sealed record Run(int Code, string Out, string Err)
    {
        public override string ToString() => $"exit {Code}\n{Out}\n{Err}";
    }

    private static async Task<Run> Loom(string[] args)
    {
        var psi = new ProcessStartInfo(Path.Combine(CniRunner.BinDir, "loom"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await p.WaitForExitAsync(cts.Token);
        return new Run(p.ExitCode, await stdout, await stderr);
    }
}
