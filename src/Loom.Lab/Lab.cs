using System.Globalization;
using Loom.Core.Model;
using Loom.Core.Selection;
using Loom.Core.Store;

namespace Loom.Lab;

/// <summary>
/// The one-machine lab: an underlay namespace with a bridge, one namespace per node joined to it by a veth whose node
/// end is <c>eth1</c> on 192.168.10.0/24, an agent per node, and pods wired by the node's CNI config. Nothing is
/// connected to the root namespace. All state lives in <see cref="LabOptions.LabDir"/>. This class is the lab's
/// public face; each concern lives in its own class (<see cref="LabCluster"/>, <see cref="LabPods"/>, <see cref="LabApi"/>, ...).
/// </summary>
public static class Lab
{
    public const string UnderlayBridge = "br-underlay";
    public const string NodeInterface = "eth1";
    public const string UnderlayRouter = "192.168.10.1";
    public const string EtcdClientUrl = "https://192.168.10.100:2379";

    /// <summary>One member: its peer port need not be reachable from outside k8s-ctr's namespace at all.</summary>
    public const string EtcdPeerUrl = "http://127.0.0.1:2380";
    public const string EtcdKeyPrefix = "/loom/";
    public const string EtcNetns = "/etc/netns";
    public const string ClusterDomain = "cluster.local";
    public const string PodTemplateHashLabel = "pod-template-hash";

    /// <summary>kubeadm's cluster DNS, with Loom's DNS server as the image: a Deployment in kube-system behind kube-dns at 10.96.0.10.</summary>
    public const string ClusterDnsManifest = LabClusterDns.ClusterDnsManifest;

    public static Taint ControlPlaneTaint { get; } = new("node-role.kubernetes.io/control-plane", null, TaintEffect.NoSchedule);

    /// <summary>k8s-ctr, k8s-w1 .. k8s-w(n-1).</summary>
    public static IReadOnlyList<string> NodeNames(int count) =>
        [.. Enumerable.Range(0, count).Select(i => i == 0 ? "k8s-ctr" : string.Create(CultureInfo.InvariantCulture, $"k8s-w{i}"))];

    public static string NodeIp(int index) => string.Create(CultureInfo.InvariantCulture, $"192.168.10.{100 + index}");

    /// <summary>The running lab's state, or null if there is none.</summary>
    public static LabState? Load(string labDir = LabOptions.DefaultLabDir) => LabState.Load(labDir);

    /// <summary>Removes any previous lab with the same directory/prefix, then builds a new one and waits until it is ready.</summary>
    public static Task<LabState> UpAsync(LabOptions options, TextWriter log, CancellationToken cancellationToken = default) =>
        LabCluster.UpAsync(options, log, cancellationToken);

    /// <summary>Removes everything a lab made. True if anything was found.</summary>
    public static Task<bool> DownAsync(string labDir = LabOptions.DefaultLabDir, string prefix = LabOptions.DefaultPrefix, TextWriter? log = null) =>
        LabTeardown.DownAsync(labDir, prefix, log);

    /// <summary>Runs a command inside a node's namespace with inherited stdio; returns its exit code.</summary>
    public static Task<int> NodeExecAsync(LabState state, string node, IReadOnlyList<string> command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        return LabProcesses.ExecAsync(state.Node(node).Netns, command, cancellationToken);
    }

    /// <summary>
    /// Runs a command in the underlay's namespace, as a client outside every node (the router address
    /// <see cref="UnderlayRouter"/>), with inherited stdio; returns its exit code.
    /// </summary>
    public static Task<int> UnderlayExecAsync(LabState state, IReadOnlyList<string> command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        return LabProcesses.ExecAsync(state.UnderlayNetns, command, cancellationToken);
    }

    /// <summary>Runs a command inside a pod (its network namespace and its resolv.conf) with inherited stdio; returns its exit code.</summary>
    public static Task<int> PodExecAsync(LabState state, string pod, IReadOnlyList<string> command, CancellationToken cancellationToken = default) =>
        LabPods.PodExecAsync(state, "default", pod, null, command, cancellationToken);

    /// <summary>As <see cref="PodExecAsync(LabState, string, IReadOnlyList{string}, CancellationToken)"/> in a namespace; <paramref name="container"/> (null: the first) must be one of the pod's.</summary>
    public static Task<int> PodExecAsync(LabState state, string @namespace, string pod, string? container, IReadOnlyList<string> command,
        CancellationToken cancellationToken = default) =>
        LabPods.PodExecAsync(state, @namespace, pod, container, command, cancellationToken);

    /// <summary>As <see cref="PodExecAsync(LabState, string, IReadOnlyList{string}, CancellationToken)"/>, capturing stdout and stderr.</summary>
    public static Task<(int ExitCode, string Stdout, string Stderr)> PodCaptureAsync(LabState state, string pod, IReadOnlyList<string> command,
        CancellationToken cancellationToken = default) =>
        LabPods.PodCaptureAsync(state, "default", pod, null, command, cancellationToken);

    /// <summary>As <see cref="PodCaptureAsync(LabState, string, IReadOnlyList{string}, CancellationToken)"/> in a namespace, checking the container.</summary>
    public static Task<(int ExitCode, string Stdout, string Stderr)> PodCaptureAsync(LabState state, string @namespace, string pod, string? container,
        IReadOnlyList<string> command, CancellationToken cancellationToken = default) =>
        LabPods.PodCaptureAsync(state, @namespace, pod, container, command, cancellationToken);

    /// <summary>The node's own cgroup (v2), never the machine's root cgroup; null where no cgroup2 hierarchy is mounted.</summary>
    public static string? NodeCgroup(LabState state, string node) => LabCluster.NodeCgroup(state, node);

    /// <summary>Each node's eBPF pins live in a bpffs directory of their own (all lab nodes share the machine's bpffs).</summary>
    public static string BpfPinDir(LabState state, string node)
    {
        ArgumentNullException.ThrowIfNull(state);
        return Path.Combine("/sys/fs/bpf", state.Prefix + node);
    }

    /// <summary>Creates a pod namespace and wires it with the node's CNI config, as a runtime would.</summary>
    public static LabPod AddPod(LabState state, string name, string node, string @namespace = "default",
        IReadOnlyDictionary<string, string>? labels = null, LabPodSpec? spec = null, string? owner = null) =>
        LabPods.AddPod(state, name, node, @namespace, labels, spec, owner);

    /// <summary>CNI DEL through the pod's chain (reverse order), then deletes its namespace.</summary>
    public static void DeletePod(LabState state, string name, string @namespace = "default") => LabPods.DeletePod(state, name, @namespace);

    /// <summary>The first container's stdout/stderr (what <c>loom lab logs</c> shows).</summary>
    public static string PodLogFile(LabState state, string pod, string @namespace = "default") => LabPods.PodLogFile(state, @namespace, pod);

    /// <summary>What <c>loom lab logs -n NS POD -c CONTAINER</c> shows (null: the first container); a LabException for a pod or container that is not there.</summary>
    public static string ContainerLogFile(LabState state, string @namespace, string pod, string? container) =>
        LabPods.ContainerLogFile(state, @namespace, pod, container);

    /// <summary>Node objects as the store has them, by name. Empty if a SQLite lab's store file is not there yet.</summary>
    public static Task<IReadOnlyDictionary<string, Node>> ReadNodesAsync(LabState state, CancellationToken cancellationToken = default) =>
        LabStore.ReadNodesAsync(state, cancellationToken);

    /// <summary>The store the lab's agents share: its SQLite file, or its etcd reached inside k8s-ctr.</summary>
    public static Task<IStore> OpenStoreAsync(LabState state, CancellationToken cancellationToken = default) => LabStore.OpenStoreAsync(state, cancellationToken);

    /// <summary>True for the errors of a store that is busy or not reachable (yet), on either kind of store.</summary>
    public static bool StoreUnreachable(Exception e) => LabStore.Unreachable(e);

    /// <summary>One line for such an error (etcd's gRPC status with the socket error under it, not the whole exception).</summary>
    public static string StoreError(Exception e) => LabStore.Describe(e);

    /// <summary>A node's agent socket (a unix socket path reaches the agent from any namespace).</summary>
    public static string AgentSocket(LabState state, string node) => LabAgents.SocketPath(state, node);

    /// <summary>Starts a node's agent again, as systemd would; returns the new pid, also recorded in the lab state.</summary>
    public static int RestartAgent(LabState state, string node) => LabAgents.RestartAgent(state, node);

    internal static string AgentConfigJson(LabState state, LabNode node) => LabAgents.AgentConfigJson(state, node);

    /// <summary>Reads a manifest file, or standard input for "-".</summary>
    public static string ReadManifest(string file) => LabApi.ReadManifest(file);

    /// <summary><c>kubectl apply</c>: validates every document first (an error anywhere applies nothing), then applies and reconciles.</summary>
    public static Task ApplyAsync(LabState state, string yaml, TextWriter output, CancellationToken cancellationToken = default) =>
        LabApi.ApplyAsync(state, yaml, output, cancellationToken);

    /// <summary><c>kubectl delete pod|namespace|networkpolicy NAME -n NS</c>; false when there is no such object.</summary>
    public static Task<bool> DeleteObjectAsync(LabState state, string kind, string @namespace, string name, TextWriter output, CancellationToken cancellationToken = default) =>
        LabApi.DeleteObjectAsync(state, kind, @namespace, name, output, cancellationToken);

    /// <summary><c>kubectl delete -f</c>: deletes the named objects (a Deployment with its pods).</summary>
    public static Task DeleteAsync(LabState state, string yaml, TextWriter output, CancellationToken cancellationToken = default) =>
        LabApi.DeleteAsync(state, yaml, output, cancellationToken);

    /// <summary>What controllers would do: places Pending pods that now fit, brings each Deployment to its replicas and template.</summary>
    public static Task ReconcileAsync(LabState state, TextWriter output, CancellationToken cancellationToken = default) =>
        LabDeploymentController.ReconcileAsync(state, output, cancellationToken);

    internal static string TemplateHash(LabPodSpec template) => LabDeploymentController.TemplateHash(template);

    /// <summary>kubectl cordon / uncordon; uncordon reconciles Pending pods.</summary>
    public static Task CordonAsync(LabState state, string node, bool cordon, TextWriter output, CancellationToken cancellationToken = default) =>
        LabNodeControl.CordonAsync(state, node, cordon, output, cancellationToken);

    /// <summary>kubectl label node: KEY=VALUE sets, KEY- removes (<see cref="LabelChanges.Parse"/>); NodeConfig nodeSelectors match the labels.</summary>
    public static Task LabelNodeAsync(LabState state, string node, LabelChanges changes, TextWriter output, CancellationToken cancellationToken = default) =>
        LabNodeControl.LabelAsync(state, node, changes, output, cancellationToken);

    /// <summary>kubectl drain: cordons the node and evicts its pods (bare ones only with <paramref name="force"/>).</summary>
    public static Task DrainAsync(LabState state, string node, bool force, TextWriter output, CancellationToken cancellationToken = default) =>
        LabNodeControl.DrainAsync(state, node, force, output, cancellationToken);

    public static string LogTail(string file, int lines = 20)
    {
        if (!File.Exists(file))
        {
            return $"({file} does not exist)";
        }

        var all = File.ReadAllLines(file);
        return all.Length == 0 ? $"({file} is empty)" : string.Join('\n', all.TakeLast(lines));
    }
}
