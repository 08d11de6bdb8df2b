using System.Diagnostics;
using System.Globalization;
using System.Net;
using Loom.Core.Cni;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Validation;
using Loom.Linux;

namespace Loom.Lab;

/// <summary>The lab's topology: validation of its directory and prefix, lab up (underlay bridge, node namespaces, cgroups), and where its loom executable is.</summary>
internal static class LabCluster
{
    /// <summary>Removes any previous lab with the same directory/prefix, then builds a new one and waits until it is ready.</summary>
    internal static async Task<LabState> UpAsync(LabOptions options, TextWriter log, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(log);
        Validate(options.LabDir, options.Prefix);
        if (options.Nodes is < 1 or > 100)
        {
            throw new LabException("--nodes must be between 1 and 100");
        }

        // The cluster file is checked before the previous lab is touched: a refused file changes nothing.
        var file = options.Cluster ?? ClusterFile.Default();
        file = file with { Cluster = file.Cluster with { ServiceBackend = options.ServiceBackend } };
        if (ClusterValidation.Validate(file.Cluster, file.Networks) is { Count: > 0 } invalid)
        {
            throw new LabException("the cluster file is invalid: " + string.Join("; ", invalid));
        }

        var clock = Stopwatch.StartNew();
        void Step(string text) => log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{clock.Elapsed.TotalSeconds,6:F1}s] {text}"));

        var removed = await LabTeardown.DownAsync(options.LabDir, options.Prefix, TextWriter.Null).ConfigureAwait(false);
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
            StoreEndpoints = etcd ? [Lab.EtcdClientUrl] : [],
            UnderlayNetns = options.Prefix + "underlay",
            LoomPath = loom,
            CniPath = $"{cniBin}:/usr/lib/cni",
            Created = DateTimeOffset.UtcNow,
        };
        var names = Lab.NodeNames(options.Nodes);
        for (var i = 0; i < names.Count; i++)
        {
            state.Nodes.Add(new LabNode { Name = names[i], Netns = options.Prefix + names[i], Ip = Lab.NodeIp(i) });
        }

        LabState.Update(state.LabDir, _ => state);

        BuildTopology(state);
        Step($"underlay {state.UnderlayNetns}: bridge {Lab.UnderlayBridge}, {state.Nodes.Count} nodes on 192.168.10.0/24 ({string.Join(", ", state.Nodes.Select(n => $"{n.Name} {n.Ip}"))})");

        if (etcd)
        {
            await LabStore.StartEtcdAsync(state, cancellationToken).ConfigureAwait(false);
            Step($"etcd (pid {state.EtcdPid}) healthy in {state.Nodes[0].Netns} at {Lab.EtcdClientUrl}");
        }

        await LabStore.WriteClusterConfigAsync(state, file, cancellationToken).ConfigureAwait(false);
        var c = file.Cluster;
        Step($"cluster config written to the {state.Store} store (networks {string.Join(", ", file.Networks.Select(n => n.Name))}; default {c.DefaultNetwork}: "
             + $"pod CIDR {c.PodCidrPools[0]}, /{c.NodeMaskSize} per node, "
             + (c.Routing == RoutingMode.Tunnel ? $"VXLAN {c.Tunnel.Device} VNI {c.Tunnel.Vni} port {c.Tunnel.Port}" : "native routing")
             + (c.IpMasq ? ", ip-masq)" : ")"));

        if (!options.StartAgents)
        {
            return state;
        }

        // One at a time, each once it has claimed its pod CIDR: nodes get their /24 in join order, like the
        // scenario's cluster (k8s-ctr 10.244.0.0/24, k8s-w1 10.244.1.0/24, ...).
        var deadline = DateTime.UtcNow + options.ReadyTimeout;
        foreach (var node in state.Nodes)
        {
            LabAgents.RecordAgent(state, node.Name, LabAgents.StartAgent(state, node));
            var cidr = await LabAgents.WaitPodCidrAsync(state, node, deadline, cancellationToken).ConfigureAwait(false);
            Step($"agent on {node.Name} started (pid {node.AgentPid}), pod CIDR {cidr}");
        }

        await LabAgents.WaitReadyAsync(state, deadline, options.ReadyTimeout, Step, cancellationToken).ConfigureAwait(false);
        await LabNodeControl.LabelNodesAsync(state, cancellationToken).ConfigureAwait(false);
        Step($"nodes labelled {Scheduler.HostnameLabel}=<name>; {state.Nodes[0].Name} tainted {Lab.ControlPlaneTaint.Key}:{Lab.ControlPlaneTaint.Effect}");
        Step($"lab up: {state.Nodes.Count} nodes Ready ({state.Store} store)");
        if (options.ClusterDns)
        {
            await LabClusterDns.DeployClusterDnsAsync(state, Step, cancellationToken).ConfigureAwait(false);
        }

        return state;
    }

    /// <summary>
    /// The node's own cgroup (v2): its pods' processes run in it and the agent's eBPF socket load balancer attaches
    /// to it — never to the machine's root cgroup. Null where no cgroup2 hierarchy is mounted.
    /// </summary>
    internal static string? NodeCgroup(LabState state, string node)
    {
        ArgumentNullException.ThrowIfNull(state);
        return CgroupRoot() is { } root ? Path.Combine(root, state.Prefix + node) : null;
    }

    internal static string? CgroupRoot() =>
        File.Exists("/sys/fs/cgroup/unified/cgroup.procs") ? "/sys/fs/cgroup/unified"
        : File.Exists("/sys/fs/cgroup/cgroup.controllers") ? "/sys/fs/cgroup"
        : null;
    internal static void Validate(string labDir, string prefix)
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

    internal static string ResolveLoom(LabOptions options)
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

    internal static void BuildTopology(LabState state)
    {
        NetNs.Create(state.UnderlayNetns);
        using var underlay = NetNs.Open(state.UnderlayNetns);
        using var unl = Netlink.OpenIn(underlay);
        unl.LinkSetUp(unl.LinkByName("lo")!.Index);
        var bridge = unl.LinkAdd(new BridgeSpec(Lab.UnderlayBridge) { Mtu = 1500 });
        unl.LinkSetUp(bridge.Index);
        // The underlay's "router" (as the host of a VirtualBox host-only network): nodes get a default route to it, as
        // real nodes have one, so traffic to an unknown address is forwarded (and firewalled) rather than failing
        // at the first route lookup. It routes nowhere itself: the lab stays closed.
        unl.AddrAdd(bridge.Index, IPAddress.Parse(Lab.UnderlayRouter), 24);

        foreach (var node in state.Nodes)
        {
            NetNs.Create(node.Netns);
            using var ns = NetNs.Open(node.Netns);
            using var nl = Netlink.OpenIn(ns);
            nl.LinkSetUp(nl.LinkByName("lo")!.Index);
            // The node end is created in the node; the peer is created straight in the underlay, named after the node.
            var eth1 = nl.LinkAdd(new VethSpec(Lab.NodeInterface, node.Name) { Mtu = 1500, PeerNetNs = underlay });
            nl.AddrAdd(eth1.Index, IPAddress.Parse(node.Ip), 24);
            nl.LinkSetUp(eth1.Index);
            nl.RouteAdd(new Route(IPNetwork.Parse("0.0.0.0/0")) { Gateway = IPAddress.Parse(Lab.UnderlayRouter), OutputIndex = eth1.Index });
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
}
