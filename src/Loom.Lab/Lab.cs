using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Loom.Core.Cni;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Linux;
using Loom.Store;

namespace Loom.Lab;

/// <summary>
/// The one-machine lab: an underlay namespace with a bridge, one namespace per node joined to it by a veth whose node
/// end is <c>eth1</c> on 192.168.10.0/24, an agent per node, and pods wired by the node's CNI config. Nothing is
/// connected to the root namespace. All state lives in <see cref="LabOptions.LabDir"/>.
/// </summary>
public static partial class Lab
{
    public const string UnderlayBridge = "br-underlay";
    public const string NodeInterface = "eth1";
    public const string EtcdClientUrl = "https://192.168.10.100:2379";

    /// <summary>One member: its peer port need not be reachable from outside k8s-ctr's namespace at all.</summary>
    public const string EtcdPeerUrl = "http://127.0.0.1:2380";
    public const string EtcdKeyPrefix = "/loom/";

    /// <summary>k8s-ctr, k8s-w1 .. k8s-w(n-1).</summary>
    public static IReadOnlyList<string> NodeNames(int count) =>
        [.. Enumerable.Range(0, count).Select(i => i == 0 ? "k8s-ctr" : string.Create(CultureInfo.InvariantCulture, $"k8s-w{i}"))];

    public static string NodeIp(int index) => string.Create(CultureInfo.InvariantCulture, $"192.168.10.{100 + index}");

    /// <summary>The running lab's state, or null if there is none.</summary>
    public static LabState? Load(string labDir = LabOptions.DefaultLabDir) => LabState.Load(labDir);

    /// <summary>Removes any previous lab with the same directory/prefix, then builds a new one and waits until it is ready.</summary>
    public static async Task<LabState> UpAsync(LabOptions options, TextWriter log, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(log);
        Validate(options.LabDir, options.Prefix);
        if (options.Nodes is < 1 or > 100)
        {
            throw new LabException("--nodes must be between 1 and 100");
        }

        var clock = Stopwatch.StartNew();
        void Step(string text) => log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{clock.Elapsed.TotalSeconds,6:F1}s] {text}"));

        var removed = await DownAsync(options.LabDir, options.Prefix, TextWriter.Null).ConfigureAwait(false);
        if (removed)
        {
            Step("removed the previous lab");
        }

        var loom = ResolveLoom(options);
        var cniBin = options.CniBinDir ?? Path.GetDirectoryName(loom)!;
        Directory.CreateDirectory(options.LabDir);
        var etcd = options.Store == LabStoreKind.Etcd;
        var state = new LabState
        {
            Prefix = options.Prefix,
            LabDir = Path.GetFullPath(options.LabDir),
            Store = etcd ? "etcd" : "sqlite",
            ServiceBackend = options.ServiceBackend,
            StorePath = etcd ? null : Path.Combine(Path.GetFullPath(options.LabDir), "store.db"),
            StoreEndpoints = etcd ? [EtcdClientUrl] : [],
            UnderlayNetns = options.Prefix + "underlay",
            LoomPath = loom,
            CniPath = $"{cniBin}:/usr/lib/cni",
            Created = DateTimeOffset.UtcNow,
        };
        var names = NodeNames(options.Nodes);
        for (var i = 0; i < names.Count; i++)
        {
            state.Nodes.Add(new LabNode { Name = names[i], Netns = options.Prefix + names[i], Ip = NodeIp(i) });
        }

        state.Save();

        BuildTopology(state);
        Step($"underlay {state.UnderlayNetns}: bridge {UnderlayBridge}, {state.Nodes.Count} nodes on 192.168.10.0/24 ({string.Join(", ", state.Nodes.Select(n => $"{n.Name} {n.Ip}"))})");

        if (etcd)
        {
            await StartEtcdAsync(state, cancellationToken).ConfigureAwait(false);
            Step($"etcd (pid {state.EtcdPid}) healthy in {state.Nodes[0].Netns} at {EtcdClientUrl}");
        }

        await WriteClusterConfigAsync(state, cancellationToken).ConfigureAwait(false);
        Step($"cluster config written to the {state.Store} store (pod CIDR {ClusterConfig.DefaultPodCidr}, /24 per node, VXLAN loom.1 VNI 1 port 8472, ip-masq)");

        if (!options.StartAgents)
        {
            return state;
        }

        // One at a time, each once it has claimed its pod CIDR: nodes get their /24 in join order, like the
        // scenario's cluster (k8s-ctr 10.244.0.0/24, k8s-w1 10.244.1.0/24, ...).
        var deadline = DateTime.UtcNow + options.ReadyTimeout;
        foreach (var node in state.Nodes)
        {
            node.AgentPid = StartAgent(state, node);
            node.AgentStartTime = LabProcesses.StartTime(node.AgentPid.Value);
            state.Save();
            var cidr = await WaitPodCidrAsync(state, node, deadline, cancellationToken).ConfigureAwait(false);
            Step($"agent on {node.Name} started (pid {node.AgentPid}), pod CIDR {cidr}");
        }

        await WaitReadyAsync(state, deadline, options.ReadyTimeout, Step, cancellationToken).ConfigureAwait(false);
        await LabelNodesAsync(state, cancellationToken).ConfigureAwait(false);
        Step($"nodes labelled {Scheduler.HostnameLabel}=<name>; {state.Nodes[0].Name} tainted {ControlPlaneTaint.Key}:{ControlPlaneTaint.Effect}");
        Step($"lab up: {state.Nodes.Count} nodes Ready ({state.Store} store)");
        if (options.ClusterDns)
        {
            await DeployClusterDnsAsync(state, Step, cancellationToken).ConfigureAwait(false);
        }

        return state;
    }

    /// <summary>
    /// Removes everything a lab made: its processes (recorded in the state file with their start times, and those
    /// living in a lab namespace), its namespaces (by state file and by prefix) and its directory. True if anything was found.
    /// </summary>
    public static async Task<bool> DownAsync(string labDir = LabOptions.DefaultLabDir, string prefix = LabOptions.DefaultPrefix,
        TextWriter? log = null)
    {
        Validate(labDir, prefix);
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
        var workloads = state?.Pods.Where(p => LabProcesses.IsRecordedAlive(p.WorkloadPid, p.WorkloadStartTime)).Select(p => p.WorkloadPid!.Value) ?? [];
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
        if (Directory.Exists(EtcNetns))
        {
            foreach (var dir in Directory.GetDirectories(EtcNetns, prefix + "pod-*"))
            {
                found = true;
                Directory.Delete(dir, recursive: true);
                await log.WriteLineAsync($"removed {dir}").ConfigureAwait(false);
            }
        }

        // The nodes' cgroups (empty now that their processes are gone).
        if (CgroupRoot() is { } cgroupRoot)
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

    /// <summary>Runs a command inside a node's namespace with inherited stdio; returns its exit code.</summary>
    public static Task<int> NodeExecAsync(LabState state, string node, IReadOnlyList<string> command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        return LabProcesses.ExecAsync(state.Node(node).Netns, command, cancellationToken);
    }

    /// <summary>
    /// Runs a command inside a pod with inherited stdio; returns its exit code. Like <c>ip netns exec</c> (which it
    /// uses): the pod's network namespace plus a mount namespace where /etc/netns/NETNS/resolv.conf is /etc/resolv.conf.
    /// </summary>
    public static Task<int> PodExecAsync(LabState state, string pod, IReadOnlyList<string> command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        var p = state.Pod(pod) ?? throw new LabException(state.Pending.Any(x => x.Name == pod) ? $"pod '{pod}' is Pending: it has no network yet" : $"no pod '{pod}' in the lab");
        return LabProcesses.ExecAsync(p.Netns, PodCommand(state, p, command), cancellationToken);
    }

    /// <summary>As <see cref="PodExecAsync"/>, capturing stdout and stderr.</summary>
    public static Task<(int ExitCode, string Stdout, string Stderr)> PodCaptureAsync(LabState state, string pod, IReadOnlyList<string> command,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        var p = state.Pod(pod) ?? throw new LabException($"no pod '{pod}' in the lab");
        return LabProcesses.CaptureAsync(p.Netns, PodCommand(state, p, command), cancellationToken);
    }

    private static List<string> PodCommand(LabState state, LabPod pod, IReadOnlyList<string> command)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (command.Count == 0)
        {
            throw new LabException("no command given");
        }

        // The command joins its node's cgroup before it enters the pod (ip netns exec remounts /sys), so a node
        // on the eBPF backend balances its connect() calls at the socket, as Cilium does for pods.
        return NodeCgroup(state, pod.Node) is { } cg
            ? ["/bin/sh", "-c", "echo $$ > \"$0/cgroup.procs\" && exec \"$@\"", cg, "/usr/sbin/ip", "netns", "exec", pod.Netns, .. command]
            : ["/usr/sbin/ip", "netns", "exec", pod.Netns, .. command];
    }

    /// <summary>
    /// The node's own cgroup (v2): its pods' processes run in it and the agent's eBPF socket load balancer attaches
    /// to it — never to the machine's root cgroup. Null where no cgroup2 hierarchy is mounted.
    /// </summary>
    public static string? NodeCgroup(LabState state, string node)
    {
        ArgumentNullException.ThrowIfNull(state);
        return CgroupRoot() is { } root ? Path.Combine(root, state.Prefix + node) : null;
    }

    private static string? CgroupRoot() =>
        File.Exists("/sys/fs/cgroup/unified/cgroup.procs") ? "/sys/fs/cgroup/unified"
        : File.Exists("/sys/fs/cgroup/cgroup.controllers") ? "/sys/fs/cgroup"
        : null;

    /// <summary>
    /// Creates a pod namespace and wires it with the node's CNI config, like a runtime would: K8S_POD_NAMESPACE and
    /// K8S_POD_NAME in CNI_ARGS, the labels in each plugin's <c>args.cni.labels</c>; and gives it the cluster DNS in
    /// /etc/netns/NETNS/resolv.conf.
    /// </summary>
    public static LabPod AddPod(LabState state, string name, string node, string @namespace = "default",
        IReadOnlyDictionary<string, string>? labels = null, LabPodSpec? spec = null, string? owner = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_')) || name.Length > 63)
        {
            throw new LabException($"invalid pod name '{name}' (letters, digits, '-', '.', '_')");
        }

        using var held = LabLock.Take(state.LabDir);
        var current = LabState.Load(state.LabDir) ?? throw new LabException($"no lab in {state.LabDir}");
        if (current.Pod(name) is not null)
        {
            throw new LabException($"pod '{name}' already exists");
        }

        var n = state.Node(node);
        var confList = Path.Combine(state.CniConfDir(n.Name), NetConf.LoomConflistName);
        if (!File.Exists(confList))
        {
            throw new LabException($"{confList} does not exist: node {n.Name} is not ready");
        }

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

            labels ??= new Dictionary<string, string>();
            var chain = CniChain.Load(confList, n.Netns, state.CniPath);
            var result = chain.Add(containerId, Path.Combine(NetNs.RunDir, netns), "eth0", CniArgs(@namespace, name), CniChain.LabelArgs(labels));
            WriteResolvConf(netns, @namespace);
            var podDir = Path.Combine(state.LabDir, "pods");
            Directory.CreateDirectory(podDir);
            File.WriteAllText(Path.Combine(podDir, name + ".result.json"), result);
            var pod = new LabPod
            {
                Name = name, Node = n.Name, Netns = netns, ContainerId = containerId, Ip = CniChain.FirstIp(result), ConfList = confList,
                Namespace = @namespace, Labels = new Dictionary<string, string>(labels, StringComparer.Ordinal), Spec = spec, Owner = owner,
                Created = DateTimeOffset.UtcNow,
            };
            current.Pods.Add(pod);
            current.Save();
            state.Pods.RemoveAll(p => p.Name == name);
            state.Pods.Add(pod);
            return pod;
        }
        catch
        {
            NetNs.Delete(netns);
            RemoveResolvConf(netns);
            throw;
        }
    }

    /// <summary>CNI DEL through the pod's chain (reverse order), then deletes its namespace.</summary>
    public static void DeletePod(LabState state, string name)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var held = LabLock.Take(state.LabDir);
        var current = LabState.Load(state.LabDir) ?? throw new LabException($"no lab in {state.LabDir}");
        var pod = current.Pod(name) ?? throw new LabException($"no pod '{name}' in the lab");
        var node = current.Node(pod.Node);
        var resultFile = Path.Combine(state.LabDir, "pods", name + ".result.json");
        LabException? error = null;
        try
        {
            if (pod.ConfList is { } conf && File.Exists(conf))
            {
                var cached = File.Exists(resultFile) ? File.ReadAllText(resultFile) : null;
                CniChain.Load(conf, node.Netns, state.CniPath).Del(pod.ContainerId, Path.Combine(NetNs.RunDir, pod.Netns), "eth0", CniArgs(pod.Namespace, name), cached);
            }
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
        RemoveResolvConf(pod.Netns);
        File.Delete(resultFile);
        File.Delete(PodLogFile(state, name));
        current.Pods.Remove(pod);
        current.Save();
        state.Pods.RemoveAll(p => p.Name == name);
        if (error is not null)
        {
            throw new LabException($"pod {name} removed, but CNI DEL reported: {error.Message}", error);
        }
    }

    /// <summary>Node readiness as the store reports it: node name to (Ready, pod CIDRs). Empty if the store cannot be read.</summary>
    public static async Task<IReadOnlyDictionary<string, Node>> ReadNodesAsync(LabState state, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        var result = new Dictionary<string, Node>(StringComparer.Ordinal);
        if (state.Store == "sqlite")
        {
            if (state.StorePath is null || !File.Exists(state.StorePath))
            {
                return result;
            }

            var store = await OpenStoreAsync(state, cancellationToken).ConfigureAwait(false);
            await using (store.ConfigureAwait(false))
            {
                var (items, _) = await store.ListAsync(Kinds.Node, cancellationToken).ConfigureAwait(false);
                foreach (var item in items)
                {
                    result[item.Key] = item.Value;
                }
            }
        }
        else
        {
            using var http = EtcdHttp(state);
            foreach (var (_, value) in await http.EtcdRangeAsync(new Uri(EtcdClientUrl), EtcdKeyPrefix + Kinds.Node.Name + "/", cancellationToken).ConfigureAwait(false))
            {
                if (JsonSerializer.Deserialize(value, Kinds.Node.TypeInfo) is { } node)
                {
                    result[node.Name] = node;
                }
            }
        }

        return result;
    }

    public static string LogTail(string file, int lines = 20)
    {
        if (!File.Exists(file))
        {
            return $"({file} does not exist)";
        }

        var all = File.ReadAllLines(file);
        return all.Length == 0 ? $"({file} is empty)" : string.Join('\n', all.TakeLast(lines));
    }

    private static string CniArgs(string @namespace, string pod) => $"IgnoreUnknown=1;K8S_POD_NAMESPACE={@namespace};K8S_POD_NAME={pod}";

    private static void Validate(string labDir, string prefix)
    {
        ArgumentException.ThrowIfNullOrEmpty(labDir);
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        var full = Path.GetFullPath(labDir).TrimEnd('/');
        // down removes the directory: refuse anything broad.
        if (full.Count(c => c == '/') < 2 || full is "/var/run" or "/run" or "/tmp" or "/var/tmp" or "/var/lib" or "/home" or "/root")
        {
            throw new LabException($"refusing lab directory '{labDir}': use a dedicated directory such as {LabOptions.DefaultLabDir}");
        }

        if (prefix.Length < 3 || prefix.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
        {
            throw new LabException($"invalid lab prefix '{prefix}' (at least 3 of letters, digits, '-', '_', '.')");
        }
    }

    private static string ResolveLoom(LabOptions options)
    {
        if (options.LoomPath is { } explicitPath)
        {
            return File.Exists(explicitPath) ? Path.GetFullPath(explicitPath) : throw new LabException($"{explicitPath} does not exist");
        }

        if (Environment.ProcessPath is { } self && Path.GetFileName(self) == "loom")
        {
            return self;
        }

        var beside = Path.Combine(AppContext.BaseDirectory, "loom");
        return File.Exists(beside) ? beside : throw new LabException("cannot find the loom executable: run out/bin/loom or set LabOptions.LoomPath");
    }

    public const string UnderlayRouter = "192.168.10.1";

    /// <summary>Each node's eBPF pins live in a bpffs directory of their own (all lab nodes share the machine's bpffs).</summary>
    public static string BpfPinDir(LabState state, string node) => Path.Combine("/sys/fs/bpf", state.Prefix + node);

    private static void BuildTopology(LabState state)
    {
        NetNs.Create(state.UnderlayNetns);
        using var underlay = NetNs.Open(state.UnderlayNetns);
        using var unl = Netlink.OpenIn(underlay);
        unl.LinkSetUp(unl.LinkByName("lo")!.Index);
        var bridge = unl.LinkAdd(new BridgeSpec(UnderlayBridge) { Mtu = 1500 });
        unl.LinkSetUp(bridge.Index);
        // The underlay's "router" (as the host of a VirtualBox host-only network): nodes get a default route to it, as
        // real nodes have one, so traffic to an unknown address is forwarded (and firewalled) rather than failing
        // at the first route lookup. It routes nowhere itself: the lab stays closed.
        unl.AddrAdd(bridge.Index, IPAddress.Parse(UnderlayRouter), 24);

        foreach (var node in state.Nodes)
        {
            NetNs.Create(node.Netns);
            using var ns = NetNs.Open(node.Netns);
            using var nl = Netlink.OpenIn(ns);
            nl.LinkSetUp(nl.LinkByName("lo")!.Index);
            // The node end is created in the node; the peer is created straight in the underlay, named after the node.
            var eth1 = nl.LinkAdd(new VethSpec(NodeInterface, node.Name) { Mtu = 1500, PeerNetNs = underlay });
            nl.AddrAdd(eth1.Index, IPAddress.Parse(node.Ip), 24);
            nl.LinkSetUp(eth1.Index);
            nl.RouteAdd(new Route(IPNetwork.Parse("0.0.0.0/0")) { Gateway = IPAddress.Parse(UnderlayRouter), OutputIndex = eth1.Index });
            var port = unl.LinkByName(node.Name) ?? throw new LabException($"underlay port {node.Name} missing");
            unl.LinkSetMaster(port.Index, bridge.Index);
            unl.LinkSetUp(port.Index);
            NetNs.Run(ns, () => Sysctl.Set("net.ipv4.ip_forward", "1"));
            Directory.CreateDirectory(Path.Combine(state.NodeDir(node.Name), "net.d"));
            Directory.CreateDirectory(Path.Combine(state.NodeDir(node.Name), "run"));
            Directory.CreateDirectory(Path.Combine(state.NodeDir(node.Name), "ipam"));
            if (NodeCgroup(state, node.Name) is { } cgroup)
            {
                Directory.CreateDirectory(cgroup);
            }
        }
    }

    private static async Task StartEtcdAsync(LabState state, CancellationToken cancellationToken)
    {
        var ctr = state.Nodes[0];
        var dataDir = Path.Combine(state.LabDir, "etcd");
        Directory.CreateDirectory(dataDir);
        LabEtcdPki.Create(state, IPAddress.Parse(ctr.Ip));
        string[] args =
        [
            "--name", ctr.Name,
            "--data-dir", dataDir,
            "--listen-client-urls", EtcdClientUrl,
            "--advertise-client-urls", EtcdClientUrl,
            "--listen-peer-urls", EtcdPeerUrl,
            "--initial-advertise-peer-urls", EtcdPeerUrl,
            "--initial-cluster", $"{ctr.Name}={EtcdPeerUrl}",
            "--initial-cluster-state", "new",
            "--client-cert-auth",
            "--trusted-ca-file", LabEtcdPki.CaFile(state),
            "--cert-file", LabEtcdPki.ServerCert(state),
            "--key-file", LabEtcdPki.ServerKey(state),
        ];
        var log = Path.Combine(state.LabDir, "etcd.log");
        state.EtcdPid = LabProcesses.StartDetached(ctr.Netns, log, "/usr/bin/etcd", args);
        state.EtcdStartTime = LabProcesses.StartTime(state.EtcdPid.Value);
        state.Save();

        using var http = EtcdHttp(state);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!await http.HealthyAsync(new Uri(EtcdClientUrl), cancellationToken).ConfigureAwait(false))
        {
            if (!LabProcesses.IsAlive(state.EtcdPid.Value))
            {
                throw new LabException($"etcd exited; {log}:\n{LogTail(log)}");
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new LabException($"etcd not healthy after 30 s; {log}:\n{LogTail(log)}");
            }

            await Task.Delay(200, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>HTTPS to the lab's etcd (in k8s-ctr) with the lab's own client certificate.</summary>
    private static NetnsHttp EtcdHttp(LabState state) => new(state.Nodes[0].Netns, LabEtcdPki.Lab(state).ClientOptions());

    private static async Task WriteClusterConfigAsync(LabState state, CancellationToken cancellationToken)
    {
        var config = new ClusterConfig
        {
            PodCidrPools = [ClusterConfig.DefaultPodCidr],
            NodeMaskSize = 24,
            Tunnel = new TunnelConfig { Device = "loom.1", Vni = 1, Port = 8472 },
            IpMasq = true,
            ServiceBackend = state.ServiceBackend,
        };
        if (state.Store == "sqlite")
        {
            var store = await OpenStoreAsync(state, cancellationToken).ConfigureAwait(false);
            await using (store.ConfigureAwait(false))
            {
                await store.PutAsync(Kinds.ClusterConfig, config, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
        }
        else
        {
            // etcd listens only inside k8s-ctr: write through its v3 JSON gateway over a socket made in that namespace,
            // at the key EtcdStore uses ({prefix}{kind}/{key}).
            using var http = EtcdHttp(state);
            await http.EtcdPutAsync(new Uri(EtcdClientUrl), EtcdKeyPrefix + Kinds.ClusterConfig.Name + "/" + Kinds.ClusterConfig.KeyOf(config),
                JsonSerializer.Serialize(config, Kinds.ClusterConfig.TypeInfo), cancellationToken).ConfigureAwait(false);
        }
    }

    internal static string AgentConfigJson(LabState state, LabNode node)
    {
        var dir = state.NodeDir(node.Name);
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("node", node.Name);
            w.WriteString("iface", NodeInterface);
            w.WriteStartObject("store");
            w.WriteString("type", state.Store);
            if (state.StorePath is { } path)
            {
                w.WriteString("path", path);
            }

            w.WriteStartArray("endpoints");
            foreach (var e in state.StoreEndpoints)
            {
                w.WriteStringValue(e);
            }

            w.WriteEndArray();
            if (state.Store == "etcd")
            {
                var tls = LabEtcdPki.Client(state, node.Name);
                w.WriteStartObject("tls");
                w.WriteString("ca", tls.CaFile);
                w.WriteString("cert", tls.CertFile);
                w.WriteString("key", tls.KeyFile);
                w.WriteEndObject();
            }

            w.WriteEndObject();
            w.WriteString("cniConfDir", Path.Combine(dir, "net.d"));
            w.WriteString("stateDir", Path.Combine(dir, "run"));
            w.WriteString("ipamDataDir", Path.Combine(dir, "ipam"));
            w.WriteString("metricsAddress", node.Ip + ":9962");
            w.WriteString("bpfPinDir", BpfPinDir(state, node.Name));
            if (NodeCgroup(state, node.Name) is { } cgroup)
            {
                w.WriteString("cgroup", cgroup);
            }
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    /// <summary>
    /// Starts a node's agent again (after it died or was killed), as systemd would restart it; the new agent
    /// adopts what the kernel has. Returns the new pid, also recorded in the lab state.
    /// </summary>
    public static int RestartAgent(LabState state, string node)
    {
        ArgumentNullException.ThrowIfNull(state);
        var n = state.Node(node);
        if (n.AgentPid is { } old && LabProcesses.IsAlive(old))
        {
            throw new LabException($"the agent of {node} is still running (pid {old})");
        }

        n.AgentPid = StartAgent(state, n);
        n.AgentStartTime = LabProcesses.StartTime(n.AgentPid.Value);
        state.Save();
        return n.AgentPid.Value;
    }

    private static int StartAgent(LabState state, LabNode node)
    {
        var dir = state.NodeDir(node.Name);
        var config = Path.Combine(dir, "agent.json");
        File.WriteAllText(config, AgentConfigJson(state, node));
        return LabProcesses.StartDetached(node.Netns, Path.Combine(dir, "agent.log"), state.LoomPath, ["agent", "--node", node.Name, "--config", config]);
    }

    private static async Task<string> WaitPodCidrAsync(LabState state, LabNode node, DateTime deadline, CancellationToken cancellationToken)
    {
        var log = Path.Combine(state.NodeDir(node.Name), "agent.log");
        while (true)
        {
            if (node.AgentPid is { } pid && !LabProcesses.IsAlive(pid))
            {
                throw new LabException($"the agent on {node.Name} (pid {pid}) exited; {log}:\n{LogTail(log)}\n(run `loom lab down` to clean up)");
            }

            try
            {
                if ((await ReadNodesAsync(state, cancellationToken).ConfigureAwait(false)).TryGetValue(node.Name, out var n) && n.PodCidrs.Count > 0)
                {
                    return string.Join(",", n.PodCidrs);
                }
            }
            catch (Exception e) when (e is HttpRequestException or IOException or Microsoft.Data.Sqlite.SqliteException)
            {
                // the store is busy or not reachable yet: try again
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new LabException($"the agent on {node.Name} claimed no pod CIDR in time; {log}:\n{LogTail(log)}\n(run `loom lab down` to clean up)");
            }

            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task WaitReadyAsync(LabState state, DateTime deadline, TimeSpan timeout, Action<string> step, CancellationToken cancellationToken)
    {
        var pending = new HashSet<string>(state.Nodes.Select(n => n.Name), StringComparer.Ordinal);
        while (pending.Count > 0)
        {
            foreach (var node in state.Nodes.Where(n => pending.Contains(n.Name)))
            {
                if (node.AgentPid is { } pid && !LabProcesses.IsAlive(pid))
                {
                    var log = Path.Combine(state.NodeDir(node.Name), "agent.log");
                    throw new LabException($"the agent on {node.Name} (pid {pid}) exited before the node was Ready; {log}:\n{LogTail(log)}\n(run `loom lab down` to clean up)");
                }
            }

            IReadOnlyDictionary<string, Node> nodes;
            try
            {
                nodes = await ReadNodesAsync(state, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpRequestException or IOException or Microsoft.Data.Sqlite.SqliteException)
            {
                nodes = new Dictionary<string, Node>();
            }

            foreach (var name in pending.ToList())
            {
                var conf = Path.Combine(state.CniConfDir(name), NetConf.LoomConflistName);
                if (nodes.TryGetValue(name, out var n) && n.Ready && File.Exists(conf))
                {
                    pending.Remove(name);
                    step($"node {name} Ready: pod CIDR {string.Join(",", n.PodCidrs)}, VTEP {n.VtepMac}, {conf}");
                }
            }

            if (pending.Count == 0)
            {
                break;
            }

            if (DateTime.UtcNow > deadline)
            {
                var first = pending.Order(StringComparer.Ordinal).First();
                var log = Path.Combine(state.NodeDir(first), "agent.log");
                throw new LabException(string.Create(CultureInfo.InvariantCulture,
                    $"nodes not Ready after {timeout.TotalSeconds:F0} s: {string.Join(", ", pending)}; {log}:\n{LogTail(log)}\n(run `loom lab down` to clean up)"));
            }

            await Task.Delay(250, cancellationToken).ConfigureAwait(false);
        }
    }
}
