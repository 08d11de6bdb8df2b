using System.Net;
using System.Net.Sockets;
using Loom.Linux;
using Loom.Linux.Bpf;
using Loom.Linux.Firewall;

namespace Loom.Lab.Migration;

/// <summary>
/// What a reboot takes from a lab node, done to its namespace: every process in it stopped (its agent first, by the
/// caller), every link but the underlay and loopback deleted, the routes nobody configured at boot flushed, the tc
/// programs on the underlay and every firewall rule gone, its eBPF pins and its run directory (a tmpfs on a host)
/// emptied. What a boot brings back stays: the underlay address, its default route, the CNI and IPAM directories on
/// disk. The caller then starts the agent, as the init system would.
/// </summary>
internal static class LabNodeReboot
{
    internal static async Task RunAsync(LabState state, string node, TextWriter output)
    {
        state.Refresh();
        var n = state.Node(node);
        // Processes living in the node's namespace (an etcd lab's store is the cluster's, not the node's: it stays).
        var pids = LabProcesses.FindInNamespaces([n.Netns]).Where(p => p != state.EtcdPid).ToList();
        await Task.WhenAll(pids.Select(p => LabProcesses.StopAsync(p, TimeSpan.FromSeconds(3)))).ConfigureAwait(false);

        using var ns = NetNs.Open(n.Netns);
        var (links, routes) = NetNs.Run(ns, () =>
        {
            using var nl = Netlink.Open();
            var underlay = nl.LinkByName(Lab.NodeInterface) ?? throw new LabException($"{node} has no {Lab.NodeInterface}");
            var gone = 0;
            foreach (var l in nl.LinkList().Where(l => l.Name is not ("lo" or Lab.NodeInterface)))
            {
                // A veth's peer may have gone with the one before it.
                if (nl.LinkByIndex(l.Index) is not null)
                {
                    nl.LinkDel(l.Index);
                    gone++;
                }
            }

            var flushed = 0;
            foreach (var r in nl.RouteList(AddressFamily.InterNetwork).Where(r => r.Protocol != RouteProtocol.Kernel))
            {
                nl.RouteDel(r);
                flushed++;
            }

            nl.RouteAdd(new Route(IPNetwork.Parse("0.0.0.0/0")) { Gateway = IPAddress.Parse(Lab.UnderlayRouter), OutputIndex = underlay.Index });
            BpfTc.DestroyClsact(underlay.Index);
            // iptables here is iptables-nft: one flush empties both.
            var (code, _, err) = FirewallTool.Run("nft", ["-f", "-"], "flush ruleset\n");
            return code == 0 ? (gone, flushed) : throw new LabException($"{node}: nft flush ruleset failed: {err.Trim()}");
        });

        // Programs on the node's cgroup (the socket load balancer) stay attached without their pins: detach them.
        var detached = LabCluster.NodeCgroup(state, node) is { } cgroup && Directory.Exists(cgroup)
            ? Enum.GetValues<BpfCgroupAttachType>().Sum(t => DetachAll(cgroup, t))
            : 0;
        var pins = Lab.BpfPinDir(state, node);
        if (Directory.Exists(pins))
        {
            Directory.Delete(pins, recursive: true);
        }

        var run = Path.Combine(state.NodeDir(node), "run");
        if (Directory.Exists(run))
        {
            Directory.Delete(run, recursive: true);
        }

        Directory.CreateDirectory(run);
        await output.WriteLineAsync($"node/{node} rebooted: {pids.Count} process(es) stopped, {links} link(s) and {routes} route(s) gone, {detached} cgroup program(s) detached, firewall and eBPF pins cleared")
            .ConfigureAwait(false);
    }

    private static int DetachAll(string cgroup, BpfCgroupAttachType type)
    {
        try
        {
            return BpfProgram.DetachAllCgroup(cgroup, type);
        }
        catch (BpfException)
        {
            return 0; // a hook this kernel does not have
        }
    }
}
