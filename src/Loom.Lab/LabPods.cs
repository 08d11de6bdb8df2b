using Loom.Core.Model;
using Loom.Linux;

namespace Loom.Lab;

/// <summary>Pods as a runtime makes them: a namespace wired through the node's CNI chain, CNI DEL on delete, exec inside.</summary>
internal static class LabPods
{
    /// <summary>
    /// Runs a command inside a pod with inherited stdio; returns its exit code. Like <c>ip netns exec</c> (which it
    /// uses): the pod's network namespace plus a mount namespace where /etc/netns/NETNS/resolv.conf is /etc/resolv.conf.
    /// Every container of a lab pod shares its network namespace and the machine's tools, so <paramref name="container"/>
    /// (null: the first) is checked, not entered.
    /// </summary>
    internal static Task<int> PodExecAsync(LabState state, string @namespace, string pod, string? container, IReadOnlyList<string> command,
        CancellationToken cancellationToken = default)
    {
        var p = Running(state, @namespace, pod, container);
        return LabProcesses.ExecAsync(p.Netns, PodCommand(state, p, command), cancellationToken);
    }

    /// <summary>As <see cref="PodExecAsync"/>, capturing stdout and stderr.</summary>
    internal static Task<(int ExitCode, string Stdout, string Stderr)> PodCaptureAsync(LabState state, string @namespace, string pod, string? container,
        IReadOnlyList<string> command, CancellationToken cancellationToken = default)
    {
        var p = Running(state, @namespace, pod, container);
        return LabProcesses.CaptureAsync(p.Netns, PodCommand(state, p, command), cancellationToken);
    }

    /// <summary>The running pod, with <paramref name="container"/> (when given) one of its containers; a LabException naming what is missing.</summary>
    internal static LabPod Running(LabState state, string @namespace, string pod, string? container)
    {
        ArgumentNullException.ThrowIfNull(state);
        var p = state.Pod(@namespace, pod) ?? throw new LabException(state.IsPending(@namespace, pod)
            ? $"pod {@namespace}/{pod} is Pending: it has no network yet" : $"pods \"{pod}\" not found in namespace {@namespace}");
        if (container is not null && !(p.Spec?.AllContainers ?? []).Any(c => c.Name == container))
        {
            throw new LabException($"container {container} is not valid for pod {pod} (its containers: {string.Join(", ", (p.Spec?.AllContainers ?? []).Select(c => c.Name))})");
        }

        return p;
    }

    internal static List<string> PodCommand(LabState state, LabPod pod, IReadOnlyList<string> command)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (command.Count == 0)
        {
            throw new LabException("no command given");
        }

        // agnhost is Loom's own implementation (loom agnhost), as whoami and the DNS server are.
        if (LabImages.IsAgnhostCommand(command[0]))
        {
            command = [state.LoomPath, "agnhost", .. command.Skip(1)];
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
    /// <param name="beforeWiring">Called with the namespace before the CNI ADD: what must run before the pod's endpoint is ready; the containers' processes (container, pid), recorded with the pod.</param>
    internal static LabPod AddPod(LabState state, string name, string node, string @namespace = "default",
        IReadOnlyDictionary<string, string>? labels = null, LabPodSpec? spec = null, string? owner = null, Func<string, IReadOnlyList<(string Container, int Pid)>>? beforeWiring = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentException.ThrowIfNullOrEmpty(name);
        // No '_': it joins namespace and name in the pod's netns and file names (Key).
        if (name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '.')) || name.Length > 63)
        {
            throw new LabException($"invalid pod name '{name}' (letters, digits, '-', '.')");
        }

        if (NameValidationErrors(@namespace) is { } bad)
        {
            throw new LabException($"invalid namespace '{@namespace}': {bad}");
        }

        // Under the lab lock from the name check to the save: two adds of one name cannot both wire a namespace.
        LabPod? added = null;
        state.Change(current =>
        {
            if (current.Pod(@namespace, name) is not null)
            {
                throw new LabException($"pod '{@namespace}/{name}' already exists");
            }

            var n = state.Node(node);
            var (confList, confJson) = LabCniConfig.Read(state, n.Name);

            var key = Key(@namespace, name);
            var netns = state.Prefix + "pod-" + key;
            var containerId = "lab-" + key + "-" + Convert.ToHexStringLower(Guid.NewGuid().ToByteArray().AsSpan(0, 6));
            NetNs.Create(netns);
            try
            {
                using (var h = NetNs.Open(netns))
                using (var nl = Netlink.OpenIn(h))
                {
                    nl.LinkSetUp(nl.LinkByName("lo")!.Index);
                }

                var processes = beforeWiring?.Invoke(netns) ?? [];
                int? workload = processes.Count > 0 ? processes[0].Pid : null;
                labels ??= new Dictionary<string, string>();
                var chain = new CniChain(confJson) { NodeNetns = n.Netns, CniPath = state.CniPath };
                var result = chain.Add(containerId, Path.Combine(NetNs.RunDir, netns), "eth0", CniArgs(@namespace, name), CniChain.PodArgs(labels, spec?.AllContainers.SelectMany(c => c.Ports).ToList() ?? []));
                LabResolvConf.Write(netns, @namespace);
                var podDir = Path.Combine(state.LabDir, "pods");
                Directory.CreateDirectory(podDir);
                File.WriteAllText(Path.Combine(podDir, key + ".result.json"), result);
                File.WriteAllText(CachedConfFile(state, key), chain.Json);
                var pod = new LabPod
                {
                    Name = name, Node = n.Name, Netns = netns, ContainerId = containerId, Ip = CniChain.FirstIp(result), ConfList = confList,
                    Namespace = @namespace, Labels = new Dictionary<string, string>(labels, StringComparer.Ordinal), Spec = spec, Owner = owner,
                    Created = DateTimeOffset.UtcNow,
                    WorkloadPid = workload, WorkloadStartTime = workload is { } pid ? LabProcesses.StartTime(pid) : null,
                    Processes = [.. processes.Select(w => new LabContainerProcess(w.Container, w.Pid, LabProcesses.StartTime(w.Pid)))],
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
    internal static void DeletePod(LabState state, string name, string @namespace = "default")
    {
        ArgumentNullException.ThrowIfNull(state);
        LabException? error = null;
        var key = Key(@namespace, name);
        state.Change(current =>
        {
            var pod = current.Pod(@namespace, name) ?? throw new LabException($"no pod '{@namespace}/{name}' in the lab");
            var node = current.Node(pod.Node);
            var resultFile = Path.Combine(state.LabDir, "pods", key + ".result.json");
            var confFile = CachedConfFile(state, key);
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
            foreach (var c in pod.Spec?.AllContainers.Skip(1) ?? [])
            {
                File.Delete(PodLogFile(state, @namespace, name, c.Name));
            }

            File.Delete(PodLogFile(state, @namespace, name));
            current.Pods.Remove(pod);
        });
        if (error is not null)
        {
            throw new LabException($"pod {@namespace}/{name} removed, but CNI DEL reported: {error.Message}", error);
        }
    }

    /// <summary>The config list a pod was wired with, as it ran.</summary>
    private static string CachedConfFile(LabState state, string key) => Path.Combine(state.LabDir, "pods", key + ".netconf.json");

    internal static string CniArgs(string @namespace, string pod) => $"IgnoreUnknown=1;K8S_POD_NAMESPACE={@namespace};K8S_POD_NAME={pod}";

    /// <summary>
    /// What names a pod's netns and files: its name in the default namespace (as before namespaces), NS_NAME elsewhere
    /// ('_' is in neither a namespace nor a pod name, so x/a and a default pod can never share one).
    /// </summary>
    internal static string Key(string @namespace, string name) => @namespace == "default" ? name : @namespace + "_" + name;

    /// <summary>
    /// A container's stdout/stderr: the first container's (<paramref name="container"/> null) is pods/KEY.log, as
    /// before pods had several; another's pods/KEY+CONTAINER.log ('+' is in no key).
    /// </summary>
    internal static string PodLogFile(LabState state, string @namespace, string pod, string? container = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        return Path.Combine(state.LabDir, "pods", Key(@namespace, pod) + (container is null ? "" : "+" + container) + ".log");
    }

    /// <summary>What <c>loom lab logs [-c CONTAINER]</c> shows: the log of a running pod's container (null: the first).</summary>
    internal static string ContainerLogFile(LabState state, string @namespace, string pod, string? container)
    {
        var p = Running(state, @namespace, pod, container);
        return PodLogFile(state, @namespace, pod, container is null || container == p.Spec?.AllContainers[0].Name ? null : container);
    }

    private static string? NameValidationErrors(string @namespace) =>
        Core.Validation.NameValidation.IsDns1123Label(@namespace) is { Count: > 0 } e ? string.Join("; ", e) : null;
}
