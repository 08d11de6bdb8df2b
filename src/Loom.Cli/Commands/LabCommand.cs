using System.CommandLine;
using System.Globalization;
using Grpc.Core;
using Loom.Lab;
using Loom.Linux;

namespace Loom.Cli.Commands;

/// <summary><c>loom lab ...</c>: the one-machine cluster of network namespaces.</summary>
internal static class LabCommand
{
    internal static readonly Option<string> LabDir = new("--lab-dir")
    {
        Description = "Lab state directory.",
        DefaultValueFactory = _ => LabOptions.DefaultLabDir,
        Recursive = true,
    };

    private static readonly Option<string> Prefix = new("--prefix")
    {
        Description = "Prefix of the lab's network namespaces.",
        DefaultValueFactory = _ => LabOptions.DefaultPrefix,
        Recursive = true,
    };

    private static Option<string> NamespaceOption() => new("-n", "--namespace") { Description = "Namespace.", DefaultValueFactory = _ => "default" };

    public static Command Create()
    {
        var cmd = new Command("lab", "The one-machine lab: a cluster of network namespaces.")
        {
            LabDir, Prefix,
            Up(), Down(), Status(), Topology(), NodeGroup(), UnderlayGroup(), PodGroup(), Exec(),
            Apply(), Delete(), Get(), Logs(), Cordon("cordon", true), Cordon("uncordon", false), Drain(), LabelGroup(),
            LabMigrateCommand.Migrate(), LabMigrateCommand.Probe(), ConnectivityCommand.LabGroup(), ObserveCommand.Lab(),
        };
        return cmd;
    }

    private static Command Up()
    {
        var nodes = new Option<int>("--nodes") { Description = "Number of nodes: k8s-ctr plus workers k8s-w1...", DefaultValueFactory = _ => 3 };
        var store = new Option<string>("--store") { Description = "Cluster store: sqlite (one file) or etcd (inside k8s-ctr).", DefaultValueFactory = _ => "sqlite" };
        store.AcceptOnlyFromAmong("sqlite", "etcd");
        var backend = new Option<string?>("--service-backend") { Description = "Service load balancing: iptables (kube-proxy's layout), nftables or ebpf; overrides the cluster file's (default iptables)." };
        var clusterFile = new Option<FileInfo?>("--config") { Description = "A cluster file (networks, defaultNetwork, serviceBackend, policyEnforcementMode; see examples/cluster); default: today's Flannel-style cluster." };
        backend.AcceptOnlyFromAmong("iptables", "nftables", "ebpf");
        var noAgents = new Option<bool>("--no-agents") { Description = "Build the topology only; start no agents." };
        var timeout = new Option<int>("--timeout") { Description = "Seconds to wait for every node to be Ready.", DefaultValueFactory = _ => 60 };
        var noDns = new Option<bool>("--no-dns") { Description = "Do not start the cluster DNS (kube-system/coredns-*, Service kube-dns at 10.96.0.10)." };
        var cmd = new Command("up", "Remove any previous lab, build the topology, start the store and an agent per node, wait until Ready, start the cluster DNS.")
        {
            nodes, store, backend, clusterFile, noAgents, timeout, noDns,
        };
        cmd.SetAction((parse, ct) => Guard(async () =>
        {
            var cluster = Loom.Core.Networks.ClusterFile.Default();
            if (parse.GetValue(clusterFile) is { } path)
            {
                try
                {
                    cluster = Loom.Core.Networks.ClusterFileParser.Parse(await File.ReadAllTextAsync(path.FullName, ct).ConfigureAwait(false));
                }
                catch (Loom.Core.Networks.ClusterFileException e)
                {
                    // Refused before the previous lab is touched.
                    await Console.Error.WriteLineAsync($"loom lab up: {path}: {e.Message.Replace("\n", $"\n{path}: ", StringComparison.Ordinal)}").ConfigureAwait(false);
                    return 2;
                }
            }

            var options = new LabOptions
            {
                Nodes = parse.GetValue(nodes),
                Store = parse.GetValue(store) == "etcd" ? LabStoreKind.Etcd : LabStoreKind.Sqlite,
                Cluster = cluster,
                ServiceBackend = parse.GetValue(backend) is { } b ? Enum.Parse<Loom.Core.Model.ServiceProxyMode>(b, ignoreCase: true) : cluster.Cluster.ServiceBackend,
                LabDir = parse.GetValue(LabDir)!,
                Prefix = parse.GetValue(Prefix)!,
                StartAgents = !parse.GetValue(noAgents),
                ReadyTimeout = TimeSpan.FromSeconds(parse.GetValue(timeout)),
                ClusterDns = !parse.GetValue(noDns) && !parse.GetValue(noAgents),
            };
            await Lab.Lab.UpAsync(options, Console.Out, ct).ConfigureAwait(false);
            return 0;
        }));
        return cmd;
    }

    private static Command Down()
    {
        var cmd = new Command("down", "Stop the lab's agents and etcd, delete its namespaces and state (also after a crash).");
        cmd.SetAction((parse, _) => Guard(async () =>
        {
            var found = await Lab.Lab.DownAsync(parse.GetValue(LabDir)!, parse.GetValue(Prefix)!, Console.Out).ConfigureAwait(false);
            await Console.Out.WriteLineAsync(found ? "lab down" : "no lab found; nothing to do").ConfigureAwait(false);
            return 0;
        }));
        return cmd;
    }

    private static Command Topology()
    {
        var output = new Option<string>("--svg") { Description = "Where to write the picture.", DefaultValueFactory = _ => "lab-topology.svg" };
        var cmd = new Command("topology", "Draw the running lab as SVG: underlay, nodes, tunnels, pods with IPs, Services and their backends.") { output };
        cmd.SetAction((parse, ct) => Guard(async () =>
        {
            var state = Lab.Lab.Load(parse.GetValue(LabDir)!) ?? throw new Lab.LabException("no lab is up (loom lab up)");
            var path = Path.GetFullPath(parse.GetValue(output)!);
            await File.WriteAllTextAsync(path, await Lab.TopologySvg.RenderAsync(state, ct).ConfigureAwait(false), ct).ConfigureAwait(false);
            await Console.Out.WriteLineAsync($"topology written to {path}").ConfigureAwait(false);
            return 0;
        }));
        return cmd;
    }

    private static Command Status()
    {
        var cmd = new Command("status", "Show the lab's nodes, namespaces, agents, store and pods.");
        cmd.SetAction((parse, ct) => Guard(async () =>
        {
            var state = Lab.Lab.Load(parse.GetValue(LabDir)!);
            if (state is null)
            {
                await Console.Out.WriteLineAsync("no lab is up").ConfigureAwait(false);
                return 1;
            }

            var store = state.Store == "etcd"
                ? $"etcd {string.Join(",", state.StoreEndpoints)} (pid {Pid(state.EtcdPid)})"
                : $"sqlite {state.StorePath}";
            var o = Console.Out;
            await o.WriteLineAsync($"lab {state.LabDir}, prefix {state.Prefix}, store {store}, up since {state.Created:u}").ConfigureAwait(false);
            await o.WriteLineAsync($"underlay {state.UnderlayNetns} {(NetNs.Exists(state.UnderlayNetns) ? "present" : "MISSING")}").ConfigureAwait(false);
            IReadOnlyDictionary<string, Loom.Core.Model.Node> nodes;
            // A frozen etcd accepts connections and never answers: status still prints the rest after a short wait.
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct);
            wait.CancelAfter(TimeSpan.FromSeconds(5));
            try
            {
                nodes = await Lab.Lab.ReadNodesAsync(state, wait.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (!ct.IsCancellationRequested && (Lab.Lab.StoreUnreachable(e) || e is OperationCanceledException))
            {
                var why = wait.IsCancellationRequested ? "no answer in 5 s" : Lab.Lab.StoreError(e);
                await Console.Error.WriteLineAsync($"store unreadable: {why}").ConfigureAwait(false);
                nodes = new Dictionary<string, Loom.Core.Model.Node>();
            }

            await o.WriteLineAsync($"{"NODE",-10} {"NETNS",-22} {"ETH1",-15} {"AGENT",-14} {"READY",-6} POD CIDR").ConfigureAwait(false);
            foreach (var n in state.Nodes)
            {
                nodes.TryGetValue(n.Name, out var sn);
                var ns = NetNs.Exists(n.Netns) ? n.Netns : n.Netns + "(gone)";
                await o.WriteLineAsync($"{n.Name,-10} {ns,-22} {n.Ip,-15} {Pid(n.AgentPid),-14} {(sn?.Ready == true ? "yes" : "no"),-6} {string.Join(",", sn?.PodCidrs ?? [])}").ConfigureAwait(false);
            }

            if (state.Pods.Count > 0)
            {
                await o.WriteLineAsync().ConfigureAwait(false);
                await PrintPods(state).ConfigureAwait(false);
            }

            return 0;
        }));
        return cmd;
    }

    private static Command NodeGroup()
    {
        var node = new Argument<string>("node") { Description = "Node name, e.g. k8s-w1." };
        var command = new Argument<string[]>("command") { Description = "Command to run (after --).", Arity = ArgumentArity.OneOrMore };
        var exec = new Command("exec", "Run a command inside a node's network namespace (stdio inherited); exits with its code.") { node, command };
        exec.SetAction((parse, ct) => Guard(async () =>
        {
            var state = Require(parse.GetValue(LabDir)!);
            return await Lab.Lab.NodeExecAsync(state, parse.GetValue(node)!, parse.GetValue(command)!, ct).ConfigureAwait(false);
        }));
        return new Command("node", "Lab nodes.") { exec };
    }

    private static Command UnderlayGroup()
    {
        var command = new Argument<string[]>("command") { Description = "Command to run (after --).", Arity = ArgumentArity.OneOrMore };
        var exec = new Command("exec", $"Run a command in the underlay's namespace, a client outside every node ({Lab.Lab.UnderlayRouter}), e.g. curl a node port; exits with its code.") { command };
        exec.SetAction((parse, ct) => Guard(async () =>
        {
            var state = Require(parse.GetValue(LabDir)!);
            return await Lab.Lab.UnderlayExecAsync(state, parse.GetValue(command)!, ct).ConfigureAwait(false);
        }));
        return new Command("underlay", "The lab's underlay: its router address is a client outside the nodes.") { exec };
    }

    private static Command PodGroup()
    {
        var name = new Argument<string>("name") { Description = "Pod name." };
        var node = new Option<string>("--node") { Description = "Node to run the pod on.", Required = true };
        var addNs = NamespaceOption();
        var add = new Command("add", "Create a pod namespace and wire it with the node's CNI config.") { name, node, addNs };
        add.SetAction((parse, _) => Guard(async () =>
        {
            var state = Require(parse.GetValue(LabDir)!);
            var pod = Lab.Lab.AddPod(state, parse.GetValue(name)!, parse.GetValue(node)!, parse.GetValue(addNs)!);
            await Console.Out.WriteLineAsync($"pod {pod.Name} on {pod.Node}: {pod.Ip} (netns {pod.Netns})").ConfigureAwait(false);
            return 0;
        }));

        var delName = new Argument<string>("name") { Description = "Pod name." };
        var delNs = NamespaceOption();
        var del = new Command("del", "CNI DEL the pod and delete its namespace.") { delName, delNs };
        del.SetAction((parse, _) => Guard(async () =>
        {
            var state = Require(parse.GetValue(LabDir)!);
            Lab.Lab.DeletePod(state, parse.GetValue(delName)!, parse.GetValue(delNs)!);
            await Console.Out.WriteLineAsync($"pod {parse.GetValue(delName)} deleted").ConfigureAwait(false);
            return 0;
        }));

        var list = new Command("list", "List the lab's pods.");
        list.SetAction((parse, _) => Guard(async () =>
        {
            await PrintPods(Require(parse.GetValue(LabDir)!)).ConfigureAwait(false);
            return 0;
        }));
        return new Command("pod", "Lab pods: namespaces wired by the node's CNI config.") { add, del, list };
    }

    private static Command Exec()
    {
        var pod = new Argument<string>("pod") { Description = "Pod name." };
        var command = new Argument<string[]>("command") { Description = "Command to run (after --).", Arity = ArgumentArity.OneOrMore };
        var ns = NamespaceOption();
        var container = new Option<string?>("-c", "--container") { Description = "Container (default: the first); every container shares the pod's network namespace." };
        var cmd = new Command("exec", "Run a command inside a pod's network namespace (stdio inherited); exits with its code. agnhost runs Loom's agnhost.")
        {
            pod, command, ns, container,
        };
        cmd.SetAction((parse, ct) => Guard(async () =>
        {
            var state = Require(parse.GetValue(LabDir)!);
            return await Lab.Lab.PodExecAsync(state, parse.GetValue(ns)!, parse.GetValue(pod)!, parse.GetValue(container), parse.GetValue(command)!, ct).ConfigureAwait(false);
        }));
        return cmd;
    }

    private static Command Apply()
    {
        var file = new Option<string>("-f", "--filename") { Description = "Manifest file (multi-document YAML), or - for standard input.", Required = true };
        var cmd = new Command("apply", "Create or update Pods, Deployments, Services, Namespaces and NetworkPolicies from Kubernetes YAML (all documents validated first).") { file };
        cmd.SetAction((parse, ct) => Guard(async () =>
        {
            var state = Require(parse.GetValue(LabDir)!);
            await Lab.Lab.ApplyAsync(state, Lab.Lab.ReadManifest(parse.GetValue(file)!), Console.Out, ct).ConfigureAwait(false);
            return 0;
        }));
        return cmd;
    }

    private static Command Delete()
    {
        var file = new Option<string?>("-f", "--filename") { Description = "Manifest file, or - for standard input." };
        var args = new Argument<string[]>("object") { Description = "KIND NAME: pod, namespace (ns) or networkpolicy (netpol), and its name.", Arity = ArgumentArity.ZeroOrMore };
        var ns = NamespaceOption();
        var cmd = new Command("delete", "Delete what a manifest names (-f), or one pod, namespace object or networkpolicy by name (-n NS).") { file, args, ns };
        cmd.SetAction((parse, ct) => Guard(async () =>
        {
            var state = Require(parse.GetValue(LabDir)!);
            var named = parse.GetValue(args) ?? [];
            switch (parse.GetValue(file), named)
            {
                case ({ } f, []):
                    await Lab.Lab.DeleteAsync(state, Lab.Lab.ReadManifest(f), Console.Out, ct).ConfigureAwait(false);
                    return 0;
                case (null, [var kind, var name]):
                    return await Lab.Lab.DeleteObjectAsync(state, kind, parse.GetValue(ns)!, name, Console.Out, ct).ConfigureAwait(false) ? 0 : 1;
                default:
                    throw new LabException("give either -f FILE or KIND NAME (e.g. `loom lab delete pod a -n x`)");
            }
        }));
        return cmd;
    }

    private static Command Get()
    {
        var resource = new Argument<string>("resource") { Description = "nodes, pods, svc, endpoints, namespaces (ns) or networkpolicies (netpol)." };
        var output = new Option<string>("-o", "--output") { Description = "wide or json.", DefaultValueFactory = _ => "" };
        var ns = new Option<string>("-n", "--namespace") { Description = "Namespace.", DefaultValueFactory = _ => "default" };
        var all = new Option<bool>("-A", "--all-namespaces") { Description = "Every namespace." };
        var cmd = new Command("get", "kubectl get over the lab: nodes, pods, svc, endpoints, namespaces, networkpolicies.") { resource, output, ns, all };
        cmd.SetAction((parse, ct) => Guard(async () =>
        {
            var state = Require(parse.GetValue(LabDir)!);
            var text = await LabGet.GetAsync(state, parse.GetValue(resource)!, parse.GetValue(output)!, parse.GetValue(all) ? null : parse.GetValue(ns), ct).ConfigureAwait(false);
            await Console.Out.WriteAsync(text).ConfigureAwait(false);
            return 0;
        }));
        return cmd;
    }

    private static Command Logs()
    {
        var pod = new Argument<string>("pod") { Description = "Pod name." };
        var ns = NamespaceOption();
        var container = new Option<string?>("-c", "--container") { Description = "Container (default: the first)." };
        var cmd = new Command("logs", "Show a pod's container log.") { pod, ns, container };
        cmd.SetAction((parse, _) => Guard(async () =>
        {
            var state = Require(parse.GetValue(LabDir)!);
            var file = Lab.Lab.ContainerLogFile(state, parse.GetValue(ns)!, parse.GetValue(pod)!, parse.GetValue(container));
            await Console.Out.WriteAsync(File.Exists(file) ? await File.ReadAllTextAsync(file).ConfigureAwait(false) : "").ConfigureAwait(false);
            return 0;
        }));
        return cmd;
    }

    private static Command Cordon(string name, bool cordon)
    {
        var node = new Argument<string>("node") { Description = "Node name." };
        var cmd = new Command(name, cordon ? "Mark a node unschedulable." : "Mark a node schedulable again (Pending pods are placed).") { node };
        cmd.SetAction((parse, ct) => Guard(async () =>
        {
            await Lab.Lab.CordonAsync(Require(parse.GetValue(LabDir)!), parse.GetValue(node)!, cordon, Console.Out, ct).ConfigureAwait(false);
            return 0;
        }));
        return cmd;
    }

    private static Command LabelGroup()
    {
        var node = new Argument<string>("node") { Description = "Node name, e.g. k8s-w1." };
        var changes = new Argument<string[]>("labels") { Description = "KEY=VALUE to set, KEY- to remove.", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("node", "Set or remove a node's labels (NodeConfig nodeSelectors match them), like kubectl label node.") { node, changes };
        cmd.SetAction((parse, ct) => Guard(async () =>
        {
            if (await NodeCommand.ParseLabelsAsync("loom lab label node", parse.GetValue(changes)!).ConfigureAwait(false) is not { } labelChanges)
            {
                return 2;
            }

            await Lab.Lab.LabelNodeAsync(Require(parse.GetValue(LabDir)!), parse.GetValue(node)!, labelChanges, Console.Out, ct).ConfigureAwait(false);
            return 0;
        }));
        return new Command("label", "Label lab objects.") { cmd };
    }

    private static Command Drain()
    {
        var node = new Argument<string>("node") { Description = "Node name." };
        var force = new Option<bool>("--force") { Description = "Also delete pods no controller owns." };
        var ignore = new Option<bool>("--ignore-daemonsets") { Description = "Accepted for kubectl compatibility (the lab has no DaemonSets)." };
        var cmd = new Command("drain", "Cordon a node and evict its pods; a Deployment's pods are recreated elsewhere (or stay Pending).") { node, force, ignore };
        cmd.SetAction((parse, ct) => Guard(async () =>
        {
            await Lab.Lab.DrainAsync(Require(parse.GetValue(LabDir)!), parse.GetValue(node)!, parse.GetValue(force), Console.Out, ct).ConfigureAwait(false);
            return 0;
        }));
        return cmd;
    }

    private static async Task PrintPods(LabState state)
    {
        await Console.Out.WriteLineAsync($"{"NAMESPACE",-12} {"POD",-16} {"NODE",-10} {"IP",-18} NETNS").ConfigureAwait(false);
        foreach (var p in state.Pods)
        {
            await Console.Out.WriteLineAsync($"{p.Namespace,-12} {p.Name,-16} {p.Node,-10} {p.Ip,-18} {p.Netns}").ConfigureAwait(false);
        }
    }

    internal static LabState Require(string labDir) =>
        Lab.Lab.Load(labDir) ?? throw new LabException($"no lab is up (no {LabState.StateFile(labDir)}): run `loom lab up`");

    private static string Pid(int? pid) =>
        pid is { } p ? string.Create(CultureInfo.InvariantCulture, $"{p} {(LabProcesses.IsAlive(p) ? "alive" : "DEAD")}") : "-";

    internal static async Task<int> Guard(Func<Task<int>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (Exception e) when (e is LabException or LinuxException or IOException or UnauthorizedAccessException)
        {
            await Console.Error.WriteLineAsync($"loom lab: {e.Message}").ConfigureAwait(false);
            return 1;
        }
        catch (RpcException e)
        {
            // An etcd lab's store that is down or refuses us: say so in one line rather than with a stack trace.
            await Console.Error.WriteLineAsync($"loom lab: {Lab.Lab.StoreError(e)}").ConfigureAwait(false);
            return 1;
        }
    }
}
