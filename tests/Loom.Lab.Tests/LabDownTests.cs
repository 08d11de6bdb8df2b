using System.Diagnostics;

namespace Loom.Lab.Tests;

[Collection(SequentialLab.Name)]
public class LabDownTests
{
    [Fact]
    public async Task Lab_down_stops_recorded_processes_and_spares_a_reused_pid_and_others_naming_the_lab_dir()
    {
        var o = TestLab.Options(nodes: 1);
        // Every process here runs <labdir>/bin/sleep, so each command line names the lab directory.
        var sleep = Path.Combine(o.LabDir, "bin", "sleep");
        Directory.CreateDirectory(Path.GetDirectoryName(sleep)!);
        File.CreateSymbolicLink(sleep, "/bin/sleep");
        using var recorded = Process.Start(sleep, "300");
        using var reused = Process.Start(sleep, "300");
        using var unrelated = Process.Start(sleep, "300");
        try
        {
            var state = new LabState
            {
                Prefix = o.Prefix,
                LabDir = o.LabDir,
                Store = "sqlite",
                UnderlayNetns = o.Prefix + "underlay",
                Nodes =
                [
                    new LabNode
                    {
                        Name = "k8s-ctr",
                        Netns = o.Prefix + "k8s-ctr",
                        Ip = "192.168.10.100",
                        AgentPid = recorded.Id,
                        AgentStartTime = LabProcesses.StartTime(recorded.Id),
                    },
                ],
                // The recorded etcd pid now belongs to a process started later: not the lab's.
                EtcdPid = reused.Id,
                EtcdStartTime = LabProcesses.StartTime(reused.Id) + 1,
            };
            LabState.Update(state.LabDir, _ => state);
            Assert.Contains(unrelated.Id, TestLab.ProcessesMentioning(o.LabDir));

            Assert.True(await Lab.DownAsync(o.LabDir, o.Prefix));

            Assert.True(recorded.WaitForExit(5000));
            Assert.True(LabProcesses.IsAlive(reused.Id));
            Assert.True(LabProcesses.IsAlive(unrelated.Id));
            Assert.False(Directory.Exists(o.LabDir));
        }
        finally
        {
            foreach (var p in new[] { recorded, reused, unrelated })
            {
                LabProcesses.Kill(p.Id);
            }

            if (Directory.Exists(o.LabDir))
            {
                Directory.Delete(o.LabDir, recursive: true);
            }
        }
    }

    [Fact]
    public void Start_time_names_one_process()
    {
        using var a = Process.Start("/bin/sleep", "30");
        try
        {
            var t = LabProcesses.StartTime(a.Id);
            Assert.NotNull(t);
            Assert.Equal(t, LabProcesses.StartTime(a.Id));
            Assert.True(LabProcesses.IsRecordedAlive(a.Id, t));
            Assert.False(LabProcesses.IsRecordedAlive(a.Id, t + 1));
            Assert.False(LabProcesses.IsRecordedAlive(a.Id, null));
        }
        finally
        {
            LabProcesses.Kill(a.Id);
        }

        Assert.True(a.WaitForExit(5000));
        Assert.Null(LabProcesses.StartTime(a.Id));
    }
}
