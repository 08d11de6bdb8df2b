using System.Globalization;
using Loom.Core.Cni;
using Loom.Linux;

namespace Loom.Lab;

/// <summary>lab down: stops what a lab started and removes every namespace, cgroup, pin and file it made.</summary>
internal static class LabTeardown
{
    /// <summary>
    /// Removes everything a lab made: its processes (recorded in the state file with their start times, and those
    /// living in a lab namespace), its namespaces (by state file and by prefix) and its directory. True if anything was found.
    /// </summary>
    internal static async Task<bool> DownAsync(string labDir = LabOptions.DefaultLabDir, string prefix = LabOptions.DefaultPrefix,
        TextWriter? log = null)
    {
        LabCluster.Validate(labDir, prefix);
        log ??= TextWriter.Null;
        var found = false;
        LabState? state = null;
        try
        {
            state = LabState.Load(labDir);
        }
        catch (LabException e)
        {
            await log.WriteLineAsync($"ignoring unreadable state: {e.Message}").ConfigureAwait(false);
        }

        var namespaces = new List<string>();
        if (state is not null)
        {
            namespaces.AddRange(state.Namespaces);
        }

        namespaces.AddRange(NetNs.List().Where(n => n.StartsWith(prefix, StringComparison.Ordinal)));
        namespaces = [.. namespaces.Distinct(StringComparer.Ordinal)];

        // Agents first (they may still talk to the store on their way out), then etcd, then whatever else is found.
        // Only what the lab recorded (pid with its start time, so a reused pid is not mistaken for it) and what
        // lives in the lab's namespaces; never a process merely because its command line names the lab directory.
        var agents = state?.Nodes.Where(n => LabProcesses.IsRecordedAlive(n.AgentPid, n.AgentStartTime)).Select(n => n.AgentPid!.Value).ToList() ?? [];
        var etcd = state is not null && LabProcesses.IsRecordedAlive(state.EtcdPid, state.EtcdStartTime) ? new List<int> { state.EtcdPid!.Value } : [];
        var workloads = state?.Pods.Where(p => LabProcesses.IsRecordedAlive(p.WorkloadPid, p.WorkloadStartTime)).Select(p => p.WorkloadPid!.Value)
            .Concat(state.Pods.SelectMany(p => p.Processes).Where(w => LabProcesses.IsRecordedAlive(w.Pid, w.StartTime)).Select(w => w.Pid)) ?? [];
        var others = LabProcesses.FindInNamespaces(namespaces).Concat(workloads).Except(agents).Except(etcd).Distinct().ToList();
        foreach (var (what, pids) in new[] { ("agent", agents), ("etcd", etcd), ("process", others) })
        {
            var alive = pids.Where(LabProcesses.IsAlive).ToList();
            foreach (var pid in alive)
            {
                found = true;
                await log.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"stopping {what} pid {pid}")).ConfigureAwait(false);
            }

            await Task.WhenAll(alive.Select(p => LabProcesses.StopAsync(p, TimeSpan.FromSeconds(3)))).ConfigureAwait(false);
        }

        // Pods first (their veths die with them), then nodes, then the underlay.
        foreach (var ns in namespaces.OrderBy(n => n.Contains("-pod-", StringComparison.Ordinal) ? 0 : n.EndsWith("underlay", StringComparison.Ordinal) ? 2 : 1))
        {
            if (NetNs.Exists(ns))
            {
                found = true;
                NetNs.Delete(ns);
                await log.WriteLineAsync($"deleted netns {ns}").ConfigureAwait(false);
            }
        }

        // Pods' resolv.conf dirs: /etc/netns/<prefix>pod-*.
        if (Directory.Exists(Lab.EtcNetns))
        {
            foreach (var dir in Directory.GetDirectories(Lab.EtcNetns, prefix + "pod-*"))
            {
                found = true;
                Directory.Delete(dir, recursive: true);
                await log.WriteLineAsync($"removed {dir}").ConfigureAwait(false);
            }
        }

        // The nodes' cgroups (empty now that their processes are gone).
        if (LabCluster.CgroupRoot() is { } cgroupRoot)
        {
            foreach (var cg in Directory.GetDirectories(cgroupRoot, prefix + "*"))
            {
                found = true;
                // rmdir (a cgroup goes with rmdir, never with its files); EBUSY while a killed process is still exiting.
                for (var attempt = 0; ; attempt++)
                {
                    try
                    {
                        Directory.Delete(cg);
                        await log.WriteLineAsync($"removed cgroup {cg}").ConfigureAwait(false);
                        break;
                    }
                    catch (IOException) when (attempt < 50)
                    {
                        await Task.Delay(100).ConfigureAwait(false);
                    }
                    catch (IOException e)
                    {
                        await log.WriteLineAsync($"cgroup {cg} not removed: {e.Message}").ConfigureAwait(false);
                        break;
                    }
                }
            }
        }

        // Pinned eBPF maps and programs outlive the agents by design; the lab's go with the lab.
        if (Directory.Exists("/sys/fs/bpf"))
        {
            foreach (var pins in Directory.GetDirectories("/sys/fs/bpf", prefix + "*"))
            {
                found = true;
                Directory.Delete(pins, recursive: true);
                await log.WriteLineAsync($"unpinned {pins}").ConfigureAwait(false);
            }
        }

        if (Directory.Exists(labDir))
        {
            found = true;
            Directory.Delete(labDir, recursive: true);
            await log.WriteLineAsync($"removed {labDir}").ConfigureAwait(false);
        }

        return found;
    }
}
