using System.Net;
using Loom.Core.Migration;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Linux;

namespace Loom.Lab.Migration;

/// <summary>
/// <c>migrate node</c>'s verify step on a lab node: the agent runs the new network as the primary one with its CNI
/// config in place, the node is Ready, and a test pod on it gets an address from the new pool and reaches the cluster
/// DNS, the probed ClusterIP and a pod on a node not migrated yet. Each network check gets a few tries (a node just
/// restarted is still learning its peers); the first that keeps failing is the answer.
/// </summary>
internal sealed class LabNodeVerification(LabState state, IStore store, MigrationTarget target, TextWriter output)
{
    private const int Tries = 5;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan NetworkPatience = TimeSpan.FromSeconds(20);

    /// <summary>Null when every check passed; else the check that failed and why.</summary>
    public async Task<string?> RunAsync(string node, string network, string testPod, CancellationToken ct)
    {
        var net = (await store.GetAsync(Kinds.Network, network, ct).ConfigureAwait(false))?.Value;
        if (net is null)
        {
            return $"network: \"{network}\" is not in the store";
        }

        // The agent may still be bringing the network up after its restart: give it a while before calling it failed.
        Loom.Core.AgentApi.NetworkStatus? onNode = null;
        Loom.Core.AgentApi.AgentStatus? status = null;
        for (var deadline = DateTime.UtcNow + NetworkPatience; ; await Task.Delay(250, ct).ConfigureAwait(false))
        {
            status = await LabMigrationHost.AgentStatusAsync(state, node, ct).ConfigureAwait(false);
            onNode = status?.Networks.FirstOrDefault(n => n.Name == network);
            if (onNode is { Primary: true, Ready: true } || DateTime.UtcNow > deadline)
            {
                break;
            }
        }

        if (onNode is not { Primary: true, Ready: true })
        {
            return $"agent: network {network} is {(status is null ? "unknown (the agent does not answer)" : onNode is null ? "not running on the node" : onNode.Ready ? "not the primary network" : "not ready")}";
        }

        var picked = LabCniConfig.Find(state.CniConfDir(node));
        if (picked is null || Path.GetFileName(picked) != Path.GetFileName(onNode.CniConfig))
        {
            return $"cni config: the runtime would pick {(picked is null ? "nothing" : Path.GetFileName(picked))}, not {network}'s {Path.GetFileName(onNode.CniConfig)}";
        }

        if (!((await LabStore.ReadNodesAsync(state, ct).ConfigureAwait(false)).TryGetValue(node, out var stored) && stored.Ready))
        {
            return "node: not Ready";
        }

        state.Refresh();
        LabPod pod;
        try
        {
            pod = state.Pod(testPod) ?? LabPods.AddPod(state, testPod, node, "default", new Dictionary<string, string> { ["app"] = "loom-migrate-check" });
        }
        catch (LabException e)
        {
            return $"test pod: {testPod} could not be wired: {e.Message}";
        }

        if (pod.Address is not { } ip || !net.PodCidr.Contains(ip))
        {
            return $"test pod: {testPod} got {pod.Ip ?? "no address"}, not one of {network}'s pool {net.PodCidr}";
        }

        await output.WriteLineAsync($"test pod {testPod} on {node}: {ip} (pool {net.PodCidr})").ConfigureAwait(false);
        using var ns = NetNs.Open(pod.Netns);
        if (target.Dns is { } dns)
        {
            var failed = await TryAsync($"dns: {target.DnsName} from {testPod}", async () =>
                string.Join(",", await ProbeRequests.DnsLookupAsync(() => NetNs.Run(ns, ProbeRequests.Udp), dns, target.DnsName, Timeout, ct).ConfigureAwait(false)), ct).ConfigureAwait(false);
            if (failed is not null)
            {
                return failed;
            }
        }

        var clusterIp = await TryAsync($"clusterip: {target.Service} {target.ClusterIp} from {testPod}", () =>
            ProbeRequests.HttpGetAsync(() => NetNs.Run(ns, ProbeRequests.Tcp), target.ClusterIp, Timeout, ct), ct).ConfigureAwait(false);
        if (clusterIp is not null)
        {
            return clusterIp;
        }

        if (await PeerPodAsync(node, ct).ConfigureAwait(false) is not { } peer)
        {
            await output.WriteLineAsync("no web pod on another node to reach: that check is skipped").ConfigureAwait(false);
            return null;
        }

        return await TryAsync($"pod: {peer.Pod.Name} ({peer.Address}) on {peer.Pod.Node} from {testPod}", () =>
            ProbeRequests.HttpGetAsync(() => NetNs.Run(ns, ProbeRequests.Tcp), peer.Address, Timeout, ct), ct).ConfigureAwait(false);
    }

    /// <summary>A web server pod on another node, one on a node not migrated yet first.</summary>
    private async Task<(LabPod Pod, IPEndPoint Address)?> PeerPodAsync(string node, CancellationToken ct)
    {
        var m = await MigrationRecord.ActiveAsync(store, ct).ConfigureAwait(false);
        var web = state.Pods
            .Where(p => p.Node != node && p.Spec is { } s && p.Address is not null
                        && LabImages.Classify(s.Image, s.Command, s.Args) == LabImages.Kind.Whoami)
            .OrderBy(p => m.NodeState(p.Node).Phase == NodeMigrationPhase.Migrated ? 1 : 0)
            .ThenBy(p => p.Name, StringComparer.Ordinal)
            .FirstOrDefault();
        return web is null ? null : (web, new IPEndPoint(web.Address!, LabImages.WhoamiPort(web.Spec!.Args)));
    }

    private async Task<string?> TryAsync(string check, Func<Task<string>> request, CancellationToken ct)
    {
        string? last = null;
        for (var i = 0; i < Tries; i++)
        {
            try
            {
                var answer = await request().ConfigureAwait(false);
                await output.WriteLineAsync($"  ok  {check}{(answer.Length > 0 ? ": " + answer : "")}").ConfigureAwait(false);
                return null;
            }
            catch (ProbeException e)
            {
                last = e.Message;
                await Task.Delay(500, ct).ConfigureAwait(false);
            }
        }

        return $"{check}: {last}";
    }
}
