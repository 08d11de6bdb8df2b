using Loom.Core.Model;
using Loom.Linux;

namespace Loom.Lab;

/// <summary>Pods as a runtime makes them: a namespace wired through the node's CNI chain, CNI DEL on delete, exec inside.</summary>
internal static class LabPods
{
    /// <summary>
    /// Runs a command inside a pod with inherited stdio; returns its exit code. Like <c>ip netns exec</c> (which it
    /// uses): the pod's network namespace plus a mount namespace where /etc/netns/NETNS/resolv.conf is /etc/resolv.conf.
    /// </summary>
    internal static Task<int> PodExecAsync(LabState state, string pod, IReadOnlyList<string> command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        var p = state.Pod(pod) ?? throw new LabException(state.Pending.Any(x => x.Name == pod) ? $"pod '{pod}' is Pending: it has no network yet" : $"no pod '{pod}' in the lab");
        return LabProcesses.ExecAsync(p.Netns, PodCommand(state, p, command), cancellationToken);
    }

    /// <summary>As <see cref="PodExecAsync"/>, capturing stdout and stderr.</summary>
    internal static Task<(int ExitCode, string Stdout, string Stderr)> PodCaptureAsync(LabState state, string pod, IReadOnlyList<string> command,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        var p = state.Pod(pod) ?? throw new LabException($"no pod '{pod}' in the lab");
        return LabProcesses.CaptureAsync(p.Netns, PodCommand(state, p, command), cancellationToken);
    }

    internal static List<string> PodCommand(LabState state, LabPod pod, IReadOnlyList<string> command)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (command.Count == 0)
        {
            throw new LabException("no command given");
        }

        // The command joins its node's cgroup before it enters the pod (ip netns exec remounts /sys), so a node
        // on the eBPF backend balances its connect() calls at the socket, as Cilium does for pods.
        return LabCluster.NodeCgroup(state, pod.Node) is { } cg
            ? ["/bin/sh", "-c", "echo $$ > \"$0/cgroup.procs\" && exec \"$@\"", cg, "/usr/sbin/ip", "netns", "exec", pod.Netns, .. command]
            : ["/usr/sbin/ip", "netns", "exec", pod.Netns, .. command];
    }

    /// <summary>
    /// Creates a pod namespace and wires it with the node's CNI config, like a runtime would: K8S_POD_NAMESPACE and
    /// K8S_POD_NAME in CNI_ARGS, the labels in each plugin's <c>args.cni.labels</c>; and gives it the cluster DNS in
    /// /etc/netns/NETNS/resolv.conf.
    /// </summary>
    /// <param name="beforeWiring">Called with the namespace before the CNI ADD: what must run before the pod's endpoint is ready; the workload's pid, recorded with the pod.</param>
    internal static LabPod AddPod(LabState state, string name, string node, string @namespace = "default",
        IReadOnlyDictionary<string, string>? labels = null, LabPodSpec? spec = null, string? owner = null, Func<string, int?>? beforeWiring = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_')) || name.Length > 63)
        {
            throw new LabException($"invalid pod name '{name}' (letters, digits, '-', '.', '_')");
        }

        // Under the lab lock from the name check to the save: two adds of one name cannot both wire a namespace.
        LabPod? added = null;
        state.Change(current =>
        {
            if (current.Pod(name) is not null)
            {
                throw new LabException($"pod '{name}' already exists");
            }

            var n = state.Node(node);
            var (confList, confJson) = LabCniConfig.Read(state, n.Name);

            var netns = state.Prefix + "pod-" + name;
            var containerId = "lab-" + name + "-" + Convert.ToHexStringLower(Guid.NewGuid().ToByteArray().AsSpan(0, 6));
            NetNs.Create(netns);
            try
            {
                using (var h = NetNs.Open(netns))
                using (var nl = Netlink.OpenIn(h))
                {
                    nl.LinkSetUp(nl.LinkByName("lo")!.Index);
                }

                var workload = beforeWiring?.Invoke(netns);
                labels ??= new Dictionary<string, string>();
                var chain = new CniChain(confJson) { NodeNetns = n.Netns, CniPath = state.CniPath };
                var result = chain.Add(containerId, Path.Combine(NetNs.RunDir, netns), "eth0", CniArgs(@namespace, name), CniChain.LabelArgs(labels));
                LabResolvConf.Write(netns, @namespace);
                var podDir = Path.Combine(state.LabDir, "pods");
                Directory.CreateDirectory(podDir);
                File.WriteAllText(Path.Combine(podDir, name + ".result.json"), result);
                File.WriteAllText(CachedConfFile(state, name), chain.Json);
                var pod = new LabPod
                {
                    Name = name, Node = n.Name, Netns = netns, ContainerId = containerId, Ip = CniChain.FirstIp(result), ConfList = confList,
                    Namespace = @namespace, Labels = new Dictionary<string, string>(labels, StringComparer.Ordinal), Spec = spec, Owner = owner,
                    Created = DateTimeOffset.UtcNow,
                    WorkloadPid = workload, WorkloadStartTime = workload is { } pid ? LabProcesses.StartTime(pid) : null,
                };
                current.Pods.Add(pod);
                added = pod;
            }
            catch
            {
                foreach (var pid in LabProcesses.FindInNamespaces([netns]))
                {
                    LabProcesses.Kill(pid);
                }

                NetNs.Delete(netns);
                LabResolvConf.Remove(netns);
                throw;
            }
        });
        return added!;
    }

    /// <summary>CNI DEL through the pod's chain (reverse order), then deletes its namespace.</summary>
    internal static void DeletePod(LabState state, string name)
    {
        ArgumentNullException.ThrowIfNull(state);
        LabException? error = null;
        state.Change(current =>
        {
            var pod = current.Pod(name) ?? throw new LabException($"no pod '{name}' in the lab");
            var node = current.Node(pod.Node);
            var resultFile = Path.Combine(state.LabDir, "pods", name + ".result.json");
            var confFile = CachedConfFile(state, name);
            try
            {
                // DEL runs the config ADD ran (libcni caches it with the result): the file itself may have been
                // renamed away meanwhile, when the node's primary network changed.
                var chain = File.Exists(confFile) ? new CniChain(File.ReadAllText(confFile)) { NodeNetns = node.Netns, CniPath = state.CniPath }
                    : pod.ConfList is { } conf && File.Exists(conf) ? CniChain.Load(conf, node.Netns, state.CniPath)
                    : null;
                var cached = File.Exists(resultFile) ? File.ReadAllText(resultFile) : null;
                chain?.Del(pod.ContainerId, Path.Combine(NetNs.RunDir, pod.Netns), "eth0", CniArgs(pod.Namespace, name), cached);
            }
            catch (LabException e)
            {
                error = e;
            }

            foreach (var pid in LabProcesses.FindInNamespaces([pod.Netns]))
            {
                LabProcesses.Kill(pid);
            }

            NetNs.Delete(pod.Netns);
            LabResolvConf.Remove(pod.Netns);
            File.Delete(resultFile);
            File.Delete(confFile);
            File.Delete(PodLogFile(state, name));
            current.Pods.Remove(pod);
        });
        if (error is not null)
        {
            throw new LabException($"pod {name} removed, but CNI DEL reported: {error.Message}", error);
        }
    }

    /// <summary>The config list a pod was wired with, as it ran.</summary>
    private static string CachedConfFile(LabState state, string pod) => Path.Combine(state.LabDir, "pods", pod + ".netconf.json");

    internal static string CniArgs(string @namespace, string pod) => $"IgnoreUnknown=1;K8S_POD_NAMESPACE={@namespace};K8S_POD_NAME={pod}";

    /// <summary>The workload's stdout/stderr (what <c>loom lab logs</c> shows).</summary>
    internal static string PodLogFile(LabState state, string pod)
    {
        ArgumentNullException.ThrowIfNull(state);
        return Path.Combine(state.LabDir, "pods", pod + ".log");
    }
}
