using System.Diagnostics;
using Loom.Linux.Firewall;

namespace Loom.Agent.Tests;

/// <summary>A firewall tool that hangs must not stall the service loop (which holds its lock) forever.</summary>
public sealed class FirewallToolTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("loom-fwtool-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string Script(string body)
    {
        var path = Path.Combine(_dir.FullName, "tool.sh");
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    [Fact]
    public void The_default_limit_grows_with_the_input_so_a_large_full_sync_is_not_killed()
    {
        Assert.Equal(FirewallTool.DefaultTimeout, FirewallTool.TimeoutFor(null));
        Assert.Equal(FirewallTool.DefaultTimeout + (4 * FirewallTool.TimeoutPerMiB), FirewallTool.TimeoutFor(new string('x', 4 * 1024 * 1024)));
    }

    [Fact]
    public void A_tool_that_hangs_is_killed_with_its_children_and_reported()
    {
        var pidFile = Path.Combine(_dir.FullName, "child.pid");
        var tool = Script($"sleep 60 & echo $! > {pidFile}; wait");
        var sw = Stopwatch.StartNew();
        var e = Assert.Throws<FirewallException>(() => FirewallTool.Run(tool, ["--noflush"], "*nat\nCOMMIT\n", TimeSpan.FromSeconds(1)));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"took {sw.Elapsed}");
        Assert.Equal($"{tool} --noflush did not finish within 1 s and was killed", e.Message);
        var child = int.Parse(File.ReadAllText(pidFile).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(SpinWait.SpinUntil(() => !File.Exists($"/proc/{child}/status") || File.ReadAllText($"/proc/{child}/status").Contains("State:\tZ", StringComparison.Ordinal),
            TimeSpan.FromSeconds(5)), "the tool's child is still running");
    }

    [Fact]
    public void A_tool_that_exits_without_reading_its_input_is_reported_not_waited_for()
    {
        var tool = Script("echo refused >&2; exit 3");
        var (code, _, stderr) = FirewallTool.Run(tool, [], new string('x', 4 << 20), TimeSpan.FromSeconds(10)); // larger than a pipe's buffer
        Assert.Equal((3, "refused\n"), (code, stderr));
    }

    [Fact]
    public void A_tool_that_finishes_in_time_returns_its_output()
    {
        var (code, stdout, _) = FirewallTool.Run(Script("cat"), [], "*filter\nCOMMIT\n");
        Assert.Equal((0, "*filter\nCOMMIT\n"), (code, stdout));
    }
}
