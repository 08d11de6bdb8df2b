using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Loom.Core.Cni;
using Loom.Core.Ipam;
using Loom.Core.Model;
using Loom.Core.Networks;
using Loom.Core.Policy;
using Loom.Core.Store;
using Loom.Datapath.Flows;
using Loom.Datapath.Policy;
using Loom.Linux;

namespace Loom.Agent.Policy;

/// <summary>One pass: identities for the local endpoints, the ipcache, and each local endpoint's compiled policy.</summary>
internal sealed partial class PolicyController
{
    private static readonly TimeSpan GcInterval = TimeSpan.FromMinutes(1);

    private readonly SemaphoreSlim _passLock = new(1, 1);
    private readonly HashSet<uint> _referenced = [];
    private readonly Dictionary<string, LocalEndpoint> _local = new(StringComparer.Ordinal);
    private HashSet<string> _failedClosed = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (long Revision, SecurityLabels Labels)> _identityLabels = new(StringComparer.Ordinal);
    private Dictionary<string, (Endpoint Endpoint, IReadOnlyDictionary<string, string> NamespaceLabels, SecurityLabels Labels)> _endpointLabels = new(StringComparer.Ordinal);
    private DateTimeOffset _lastGc = DateTimeOffset.UtcNow;
    private int _ipcacheEntries;
    private bool _referencesSynced;

    /// <summary>A local endpoint as the last pass programmed it.</summary>
    internal sealed record LocalEndpoint(Endpoint Endpoint, uint Identity, int Ifindex, uint EndpointId, EndpointPolicy Policy);

    internal string Summary { get; private set; } = "not started";

    private async Task PassAsync(CancellationToken ct)
    {
        await _passLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var started = Stopwatch.GetTimestamp();
            var mode = await WantedModeAsync(ct).ConfigureAwait(false);
            var namespaces = _namespaces!.Snapshot.Values.ToDictionary(v => v.Value.Name, v => v.Value, StringComparer.Ordinal);
            var byLabels = new Dictionary<string, uint>(StringComparer.Ordinal);
            var identities = new Dictionary<uint, SecurityLabels>();
            var badIdentities = new List<Rejection>();
            foreach (var i in _identityCache!.Snapshot.Values.Where(i => !i.Value.Pending))
            {
                if (!TryLabels(i, out var set, out var why))
                {
                    badIdentities.Add(new Rejection(Kinds.Identity.Name, i.Key, "bad-labels", why));
                    continue; // an identity no agent could have made: its number matches no peer
                }

                byLabels[set.Canonical] = i.Value.Id;
                identities[i.Value.Id] = set;
            }

            loops.Refused("policy: identities", badIdentities);
            foreach (var gone in _identityLabels.Keys.Where(k => _identityCache.Get(k) is null).ToList())
            {
                _identityLabels.Remove(gone);
            }

            // Every endpoint's identity: the local ones are allocated here, the others by their own nodes.
            var endpoints = _endpoints!.Snapshot.Values.Select(v => v.Value).ToList();
            var identityOf = new Dictionary<string, uint>(StringComparer.Ordinal);
            var endpointLabels = new Dictionary<string, (Endpoint, IReadOnlyDictionary<string, string>, SecurityLabels)>(StringComparer.Ordinal);
            var identityFailures = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var ep in endpoints)
            {
                // Unchanged endpoint and namespace labels: the set made last pass (a pass must stay cheap at 1,000s of pods).
                var nsLabels = NamespaceLabels(namespaces, ep.Namespace);
                var labels = _endpointLabels.TryGetValue(ep.Key, out var known) && ReferenceEquals(known.Endpoint, ep)
                             && LabelsEqual(known.NamespaceLabels, nsLabels)
                    ? known.Labels
                    : SecurityLabels.Of(ep.Namespace, ep.Labels, nsLabels);
                endpointLabels[ep.Key] = (ep, nsLabels, labels);
                var id = SecurityLabels.IdentityFor(labels) ?? byLabels.GetValueOrDefault(labels.Canonical);
                if (ep.Node == node.Name && id != ReservedIdentity.KubeDns && (id == 0 || !_referenced.Contains(id)))
                {
                    try
                    {
                        var acquired = await _identities.AcquireAsync(labels, ct).ConfigureAwait(false);
                        id = acquired.Id;
                        _referenced.Add(id);
                        identities[id] = labels;
                    }
                    catch (Exception e) when (e is not OperationCanceledException && !AgentLoops.IsBug(e))
                    {
                        // This endpoint alone: it is isolated below (no identity, no rules), the others go on.
                        identityFailures[ep.Key] = e.Message;
                        id = 0;
                    }
                }

                if (id != 0)
                {
                    identityOf[ep.Key] = id;
                    identities.TryAdd(id, labels);
                }
            }

            _endpointLabels = endpointLabels;
            await ReleaseUnheldAsync(endpoints, identityOf, ct).ConfigureAwait(false);
            var input = new PolicyInput(
                _policies!.Snapshot.Values.Select(v => v.Value).ToList(),
                namespaces,
                identities,
                endpoints.Where(e => identityOf.ContainsKey(e.Key)).Select(e => ToPolicyEndpoint(e, identityOf[e.Key])).ToList());
            var datapath = Datapath();
            datapath.SetConfig(mode != PolicyEnforcementMode.Never, allowHost: true, node.Cluster.ServiceCidr);
            var ipcache = Ipcache(endpoints, identityOf);
            datapath.SyncIpcache(ipcache);
            _ipcacheEntries = ipcache.Count;
            Names = new PolicyNames(ipcache, identities, Names.Version + 1);
            if (Mode != mode)
            {
                Mode = mode;
                ModeChanged?.Invoke();
            }

            try
            {
                ProgramEndpoints(datapath, endpoints, identityOf, identityFailures, input, mode);
            }
            finally
            {
                AgentMetrics.PolicyPassSeconds.Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
                AgentMetrics.PolicyIdentities.Set(identities.Count);
                ExportCounters(datapath);
                await CollectGarbageAsync(ct).ConfigureAwait(false);
            }
        }
        finally
        {
            _passLock.Release();
        }
    }

    /// <summary>
    /// Attaches to each local endpoint's host veth and writes its entry and rules; forgets veths that are gone. One
    /// endpoint that cannot be programmed (its rules do not fit the maps) is isolated with no rules, failing closed,
    /// and reported; the others are programmed all the same.
    /// </summary>
    private void ProgramEndpoints(BpfPolicy datapath, List<Endpoint> endpoints, Dictionary<string, uint> identityOf, Dictionary<string, string> identityFailures,
        PolicyInput input, PolicyEnforcementMode mode)
    {
        using var nl = Netlink.Open();
        var ids = EndpointIds(datapath);
        var seen = new HashSet<int>();
        var unattached = 0;
        var failed = new List<string>();
        var failedKeys = new HashSet<string>(StringComparer.Ordinal);
        var local = new Dictionary<string, LocalEndpoint>(StringComparer.Ordinal);
        foreach (var ep in endpoints.Where(e => e.Node == node.Name))
        {
            if (nl.LinkByName(CniNames.HostVethName(ep.ContainerId, ep.Interface)) is not { } veth)
            {
                unattached++; // not wired by loom-cni (yet): nothing of ours to put a program on
                continue;
            }

            var id = identityOf.GetValueOrDefault(ep.Key);
            if (!ids.TryGetValue(veth.Index, out var epId))
            {
                epId = Enumerable.Range(1, ushort.MaxValue).Select(i => (uint)i).FirstOrDefault(i => !ids.ContainsValue(i));
                if (epId == 0)
                {
                    failed.Add($"{ep.Key}: no free endpoint id (65,535 in use)");
                    continue;
                }

                ids[veth.Index] = epId;
            }

            seen.Add(veth.Index);
            if (id == 0)
            {
                failed.Add($"{ep.Key}: no identity: {identityFailures.GetValueOrDefault(ep.Key, "its identity is not in the store yet")}");
                failedKeys.Add(ep.Key);
                FailClosed(datapath, veth.Index, epId, ReservedIdentity.World, ep.IPs.FirstOrDefault(i => i.AddressFamily == AddressFamily.InterNetwork));
                continue;
            }

            var compiled = PolicyCompiler.Compile(ToPolicyEndpoint(ep, id), input, mode);
            // The maps carry IPv4; an IPv6 ipBlock has no address of a pod here to match.
            var policy = compiled with { Cidrs = [.. compiled.Cidrs.Where(c => c.Prefix.BaseAddress.AddressFamily == AddressFamily.InterNetwork)] };
            var address = ep.IPs.FirstOrDefault(i => i.AddressFamily == AddressFamily.InterNetwork);
            try
            {
                // Rules first, then the endpoint's flags: an endpoint is never enforced against rules not yet written.
                datapath.AttachEndpoint(veth.Index);
                datapath.SyncEndpointRules(epId, policy.Rules, policy.Cidrs);
                datapath.SetEndpoint(veth.Index, epId, id, policy.IngressEnforced, policy.EgressEnforced, address);
                local[ep.Key] = new LocalEndpoint(ep, id, veth.Index, epId, policy);
            }
            catch (Exception e) when (e is ArgumentException or Linux.Bpf.BpfException)
            {
                failed.Add($"{ep.Key}: {e.Message}");
                failedKeys.Add(ep.Key);
                FailClosed(datapath, veth.Index, epId, id, address);
            }
        }

        foreach (var (ifindex, role) in datapath.Interfaces())
        {
            if (role == PolicyInterfaceRole.Endpoint && !seen.Contains(ifindex))
            {
                try
                {
                    // Rules and connections first: the endpoint record is what keeps its id known to a later pass.
                    if (ids.TryGetValue(ifindex, out var gone))
                    {
                        datapath.RemoveEndpointRules(gone);
                        datapath.ForgetConnections(gone);
                    }

                    datapath.RemoveEndpoint(ifindex);
                    ids.Remove(ifindex);
                    datapath.DetachEndpoint(ifindex);
                }
                catch (Exception e) when (e is ArgumentException or Linux.Bpf.BpfException)
                {
                    failed.Add($"ifindex {ifindex} (a removed pod): {e.Message}");
                }
            }
        }

        // Deferred egress (Services kube-proxy translates after tc) is judged where the translated packet leaves.
        var links = nodeDevices().Select(n => nl.LinkByName(n)).OfType<Link>().ToList();
        foreach (var link in links)
        {
            datapath.AttachNodeEgress(link.Index, overlay: link.Kind == "vxlan"); // the role names its flow events' points
        }

        try
        {
            // Their outer packets are not traced on the underlay (the flows are, at the tunnel device).
            datapath.SetTunnelPorts(links.Where(l => l.Vxlan is { Port: > 0 }).Select(l => (int)l.Vxlan!.Port).ToList());
        }
        catch (ArgumentException e)
        {
            failed.Add($"flow events: {e.Message}"); // more tunnel ports than pol_config holds: reported, enforcement unaffected
        }

        var devices = links.Select(l => l.Index).ToHashSet();
        foreach (var (ifindex, role) in datapath.Interfaces())
        {
            if (role is PolicyInterfaceRole.Node or PolicyInterfaceRole.Overlay && !devices.Contains(ifindex))
            {
                datapath.DetachNodeEgress(ifindex); // a tunnel device of a network deleted since
            }
        }

        lock (_local)
        {
            _failedClosed = failedKeys;
            _local.Clear();
            foreach (var (k, v) in local)
            {
                _local[k] = v;
            }
        }

        var enforced = local.Values.Count(l => l.Policy.IngressEnforced || l.Policy.EgressEnforced);
        Summary = $"mode {NetworkYaml.Wire(mode)}; {_policies!.Snapshot.Count} policies, {local.Count} endpoints ({enforced} enforced), "
                  + $"{_identityCache!.Snapshot.Count} identities, {_ipcacheEntries} ipcache entries"
                  + (unattached > 0 ? $"; {unattached} endpoint(s) without a veth yet" : "");
        if (failed.Count > 0)
        {
            // The pass fails (status shows it, the loop retries) after the others were programmed.
            throw new InvalidOperationException($"{failed.Count} endpoint(s) isolated with no rules: {string.Join("; ", failed)}");
        }
    }

    /// <summary>Endpoint ids by host veth, as the maps hold them (a restarted agent keeps them); 16 bits, as skb->mark carries them.</summary>
    private static Dictionary<int, uint> EndpointIds(BpfPolicy datapath) =>
        datapath.Endpoints().ToDictionary(e => e.Key, e => e.Value.EndpointId);

    /// <summary>An endpoint whose policy could not be written: isolated both ways with no rules (replies still pass).</summary>
    private void FailClosed(BpfPolicy datapath, int ifindex, uint epId, uint identity, IPAddress? address)
    {
        try
        {
            datapath.AttachEndpoint(ifindex);
            datapath.RemoveEndpointRules(epId);
            datapath.SetEndpoint(ifindex, epId, identity, enforceIngress: true, enforceEgress: true, address);
        }
        catch (Exception e) when (e is ArgumentException or Linux.Bpf.BpfException)
        {
            loops.Log($"policy: endpoint on ifindex {ifindex} could not even be isolated: {e.Message}");
        }
    }

    /// <summary>Pod IPs to their identities; node addresses to host (this node) or remote-node.</summary>
    private Dictionary<IPNetwork, uint> Ipcache(List<Endpoint> endpoints, Dictionary<string, uint> identityOf)
    {
        var map = new Dictionary<IPNetwork, uint>();
        foreach (var n in _nodes!.Snapshot.Values.Select(v => v.Value))
        {
            var id = n.Name == node.Name ? ReservedIdentity.Host : ReservedIdentity.RemoteNode;
            Add(map, n.UnderlayIp, id);
            foreach (var cidr in n.PodCidrs.Concat(n.Networks.Values.Select(v => v.PodCidr)))
            {
                if (cidr.BaseAddress.AddressFamily == AddressFamily.InterNetwork)
                {
                    Add(map, IpRange.DefaultGateway(cidr), id); // cni0's / loom_host's address: the node's own
                }
            }
        }

        foreach (var ep in endpoints)
        {
            if (identityOf.TryGetValue(ep.Key, out var id))
            {
                foreach (var ip in ep.IPs)
                {
                    Add(map, ip, id);
                }
            }
        }

        return map;

        static void Add(Dictionary<IPNetwork, uint> map, IPAddress ip, uint id)
        {
            if (ip.AddressFamily == AddressFamily.InterNetwork)
            {
                map[new IPNetwork(ip, 32)] = id;
            }
        }
    }

    /// <summary>Drops this node's references to identities no local endpoint has any more (after a restart too).</summary>
    private async Task ReleaseUnheldAsync(List<Endpoint> endpoints, Dictionary<string, uint> identityOf, CancellationToken ct)
    {
        var held = endpoints.Where(e => e.Node == node.Name && identityOf.ContainsKey(e.Key)).Select(e => identityOf[e.Key]).ToHashSet();
        if (!_referencesSynced || !_referenced.SetEquals(held))
        {
            await _identities.SyncReferencesAsync(held, ct).ConfigureAwait(false);
            _referenced.Clear();
            _referenced.UnionWith(held);
            _referencesSynced = true;
        }
    }

    private async Task CollectGarbageAsync(CancellationToken ct)
    {
        if (DateTimeOffset.UtcNow - _lastGc < GcInterval)
        {
            return;
        }

        _lastGc = DateTimeOffset.UtcNow;
        var deleted = await _identities.CollectGarbageAsync(GcInterval, ct).ConfigureAwait(false);
        if (deleted > 0)
        {
            loops.Log($"policy: {deleted} identities no node references any more deleted");
        }
    }

    /// <summary>An identity's label set, parsed once per stored revision.</summary>
    private bool TryLabels(Versioned<SecurityIdentity> identity, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SecurityLabels? labels, out string why)
    {
        if (_identityLabels.TryGetValue(identity.Key, out var known) && known.Revision == identity.Revision)
        {
            labels = known.Labels;
            why = "";
            return true;
        }

        try
        {
            labels = SecurityLabels.FromLabels(identity.Value.Labels);
            _identityLabels[identity.Key] = (identity.Revision, labels);
            why = "";
            return true;
        }
        catch (ArgumentException e)
        {
            labels = null;
            why = e.Message;
            return false;
        }
    }

    private static bool LabelsEqual(IReadOnlyDictionary<string, string> a, IReadOnlyDictionary<string, string> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var v) && v == kv.Value);

    private static PolicyEndpoint ToPolicyEndpoint(Endpoint e, uint identity) =>
        new(e.Namespace, e.Name, e.Labels, identity, e.IPs, e.Ports);

    private static IReadOnlyDictionary<string, string> NamespaceLabels(Dictionary<string, ClusterNamespace> namespaces, string name) =>
        namespaces.TryGetValue(name, out var ns) ? ns.EffectiveLabels : new Dictionary<string, string>(StringComparer.Ordinal) { [ClusterNamespace.NameLabel] = name };

    private async Task<PolicyEnforcementMode> WantedModeAsync(CancellationToken ct)
    {
        var (nodeConfig, cluster) = await loops.ConfigsAsync(node, "policy mode", ct).ConfigureAwait(false);
        return nodeConfig?.PolicyEnforcementMode ?? cluster.PolicyEnforcementMode;
    }

    private BpfPolicy Datapath() => _datapath ??= new BpfPolicy(new PolicyDatapathOptions
    {
        PinDirectory = PinDirectory,
        EventsDirectory = FlowEventMaps.DirectoryFor(node.Config.BpfPinDir),
    });

    private static void ExportCounters(BpfPolicy datapath)
    {
        foreach (var ((reason, direction), count) in datapath.CountersByDirection())
        {
            AgentMetrics.PolicyVerdicts.WithLabels(Action(reason), direction == PolicyDirection.Ingress ? "ingress" : "egress", reason.ToString()).IncTo(count);
        }
    }

    /// <summary>
    /// What a pol_stats reason did to the packet: a verdict (allowed, dropped), or none yet (deferred: judged again after
    /// the DNAT, counted then as DeferredAllowed / DeferredDropped) or none at all (passed: not IPv4, unmanaged, policy off,
    /// a fragment), so a Service packet is not counted twice and a denied one never shows as allowed.
    /// </summary>
    internal static string Action(PolicyReason reason) => reason switch
    {
        PolicyReason.DroppedIngress or PolicyReason.DroppedEgress or PolicyReason.DeferredDropped
            or PolicyReason.DroppedSpoofed or PolicyReason.DroppedNotIpv4 => "dropped",
        PolicyReason.Deferred => "deferred",
        PolicyReason.PassedNotIpv4 or PolicyReason.PassedUnmanaged or PolicyReason.PassedDisabled or PolicyReason.PassedFragment => "passed",
        _ => "allowed",
    };
}
