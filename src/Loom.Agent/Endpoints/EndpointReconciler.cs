using System.Net;
using Loom.Core.Cni;
using Loom.Core.Controllers;
using Loom.Core.Ipam;
using Loom.Core.Model;
using Loom.Core.Store;
using Loom.Linux;

namespace Loom.Agent.Endpoints;

/// <summary>
/// Keeps this node's Endpoints true to its pods, at start and every <c>endpointReconcileSeconds</c>: an Endpoint whose
/// address is no longer allocated to its attachment in the node's IPAM directories (the pod's DEL ran while the agent
/// was down, or an ADD was rolled back after the agent stored it), or whose host veth is gone, is deleted, so its
/// Services stop sending traffic to an address the next pod may get. Addresses a DEL left pending release (it could
/// not tell the agent) are freed once no Endpoint names their attachment and its veth is gone.
/// A corrupt allocation file is reported and rebuilt from the Endpoint that names its address; with none, it is
/// left as it is, its address taken: freeing allocations of containers that are gone is the runtime's CNI GC's job,
/// not the agent's (only the runtime knows which containers still exist).
/// </summary>
internal sealed class EndpointReconciler(NodeContext node, IStore store, AgentLoops loops, Func<ISet<string>?>? hostLinks = null) : IController, IDisposable
{
    private const string Loop = "endpoint reconcile";
    private readonly SemaphoreSlim _signal = new(0);
    private readonly HashSet<string> _reported = new(StringComparer.Ordinal);
    private long _passes;
    private long _removed;

    public string Name => "endpoints";

    private TimeSpan Every => TimeSpan.FromSeconds(Math.Max(1, node.Config.EndpointReconcileSeconds));

    public Task StartAsync(CancellationToken ct) => PassAsync(ct);

    public Task RunAsync(CancellationToken ct) => loops.RunOnSignalAsync(_signal, PassAsync, Loop, ct, Every);

    public ControllerStatus Describe() =>
        new(Name, loops.LastError(Loop) is null, $"every {Every.TotalSeconds:0} s; {Interlocked.Read(ref _removed)} stale endpoints removed",
            Interlocked.Read(ref _passes), loops.LastError(Loop));

    public void Dispose() => _signal.Dispose();

    /// <summary>One comparison of the store's Endpoints of this node with its IPAM directories and host veths.</summary>
    internal async Task PassAsync(CancellationToken ct)
    {
        Interlocked.Increment(ref _passes);
        var (items, _) = await store.ListValidAsync(Kinds.Endpoint, (_, _) => { }, ct).ConfigureAwait(false);
        var local = items.Where(e => e.Value.Node == node.Name && !string.IsNullOrEmpty(e.Value.ContainerId)).ToList();
        var links = (hostLinks ?? HostLinks)();
        // No network directory at all: no pod was wired with the agent's CNI config (whose IPAM writes there), so
        // the allocations cannot judge these Endpoints; only their veths do.
        var dirs = Directory.Exists(node.Config.IpamDataDir) ? Directory.GetDirectories(node.Config.IpamDataDir) : [];
        var held = new HashSet<(Attachment, IPAddress)>();
        var pending = new List<(string Dir, AllocationRecord Record)>();
        foreach (var dir in dirs)
        {
            ReadDirectory(dir, local, held, pending);
        }

        var remaining = new List<Endpoint>();
        foreach (var e in local)
        {
            var att = new Attachment(e.Value.ContainerId, e.Value.Interface);
            var why = StaleReason(e.Value, att, dirs.Length > 0, held, links);
            if (why is null)
            {
                remaining.Add(e.Value);
            }
            else if (await store.DeleteAsync(Kinds.Endpoint, e.Key, e.Revision, ct).ConfigureAwait(false))
            {
                // The revision listed: an Endpoint re-registered meanwhile (same pod, new ADD) is not touched.
                Interlocked.Increment(ref _removed);
                AgentMetrics.EndpointReconcile.WithLabels("endpoint_removed").Inc();
                loops.Log($"endpoint {e.Key} ({string.Join(",", e.Value.IPs)}) removed: {why}");
            }
            else
            {
                remaining.Add(e.Value);
            }
        }

        foreach (var (dir, r) in pending)
        {
            var named = remaining.Any(e => e.ContainerId == r.ContainerId && e.Interface == r.IfName);
            // Links unknown (netlink failed): keep the address, as when its veth is still there.
            if (!named && links is not null && !links.Contains(CniNames.HostVethName(r.ContainerId, r.IfName)))
            {
                using var ipam = AllocationDirectory.Open(dir);
                if (ipam.ReleasePending(r.Address, r.Attachment))
                {
                    AgentMetrics.EndpointReconcile.WithLabels("address_released").Inc();
                    loops.Log($"ipam {dir}: {r.Address} of container {r.ContainerId} ({r.IfName}) released: no endpoint names it any more");
                }
            }
        }
    }

    private static string? StaleReason(Endpoint e, Attachment att, bool checkIpam, HashSet<(Attachment, IPAddress)> held, ISet<string>? links)
    {
        // A file with no interface (older host-local: the ID alone) holds the address for any interface of its
        // container, as the allocator reads it (DiskIpAllocator.IsLegacyOf).
        var legacy = new Attachment(att.ContainerId, "");
        if (checkIpam && e.IPs.FirstOrDefault(ip => !held.Contains((att, ip)) && !held.Contains((legacy, ip))) is { } gone)
        {
            return $"address {gone} is no longer allocated to container {att.ContainerId} ({att.IfName}) in the node's IPAM";
        }

        // No interface recorded (an older registration): no veth name to look for.
        return att.IfName.Length > 0 && links is not null && !links.Contains(CniNames.HostVethName(att.ContainerId, att.IfName))
            ? $"its host veth {CniNames.HostVethName(att.ContainerId, att.IfName)} is gone"
            : null;
    }

    /// <summary>Collects what a network directory holds; reports corrupt files and rebuilds those an Endpoint names.</summary>
    private void ReadDirectory(string dir, List<Versioned<Endpoint>> local, HashSet<(Attachment, IPAddress)> held, List<(string, AllocationRecord)> pending)
    {
        using var ipam = AllocationDirectory.Open(dir);
        var (records, marked) = ipam.Read();
        foreach (var r in records)
        {
            var owner = r;
            if (r.IsCorrupt)
            {
                owner = Rebuild(ipam, r, local) ?? r;
            }

            if (marked.Contains(r.Address))
            {
                if (!owner.IsCorrupt)
                {
                    pending.Add((dir, owner));
                }
            }
            else if (!owner.IsCorrupt)
            {
                held.Add((owner.Attachment, owner.Address));
            }
        }
    }

    private AllocationRecord? Rebuild(AllocationDirectory ipam, AllocationRecord r, List<Versioned<Endpoint>> local)
    {
        var file = Path.Combine(ipam.Path, r.Address.ToString());
        var namers = local.Where(e => e.Value.IPs.Contains(r.Address)).Select(e => new Attachment(e.Value.ContainerId, e.Value.Interface)).Distinct().ToList();
        if (namers.Count == 1 && ipam.Rebuild(r.Address, namers[0]))
        {
            AgentMetrics.EndpointReconcile.WithLabels("allocation_rebuilt").Inc();
            loops.Log($"ipam: corrupt allocation file {file} rebuilt: owner container {namers[0].ContainerId} ({namers[0].IfName}), from its endpoint");
            _reported.Remove(file);
            return new AllocationRecord(r.Address, namers[0].ContainerId, namers[0].IfName);
        }

        if (_reported.Add(file))
        {
            AgentMetrics.EndpointReconcile.WithLabels("allocation_corrupt").Inc();
            loops.Log($"ipam: corrupt allocation file {file} (no owner recorded): {r.Address} stays taken until the runtime's CNI GC collects it");
        }

        return null;
    }

    /// <summary>The node's link names (the agent runs in the node's network namespace); null when they cannot be read.</summary>
    private static HashSet<string>? HostLinks()
    {
        try
        {
            using var nl = Netlink.Open();
            return nl.LinkList().Select(l => l.Name).ToHashSet(StringComparer.Ordinal);
        }
        catch (NetlinkException)
        {
            return null;
        }
    }
}
