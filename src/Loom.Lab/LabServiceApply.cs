using System.Globalization;
using System.Net;
using System.Text.Json;
using Loom.Core.Model;
using Loom.Core.Services;
using Loom.Core.Store;

namespace Loom.Lab;

/// <summary>
/// One apply's Services: the store's Services listed once, then kept current by this apply's own writes, so applying N
/// Services costs N compare-and-swap puts rather than N lists. A put that fails its compare, or whose revision shows
/// another writer got in since the view was read, re-reads the view; a ClusterIP that a concurrent writer handed out
/// first is given up (the earlier write keeps it). Node ports (and LoadBalancer health-check ports) come from one pool
/// over every stored Service: requested or free, kept on re-apply, released when the type goes back to ClusterIP.
/// </summary>
internal sealed class LabServiceApply
{
    private const int MaxAttempts = 50;
    private static readonly ClusterIpAllocator Allocator = new(ClusterIpAllocator.DefaultServiceCidr);

    private readonly IStore _store;
    private Dictionary<string, Versioned<Service>> _byKey = new(StringComparer.Ordinal);
    private Dictionary<IPAddress, Versioned<Service>> _byIp = [];
    private ClusterIpPool _pool = new(Allocator, []);
    private NodePortPool _nodePorts = new(NodePortAllocator.Default);

    // The store revision the view is complete at.
    private long _revision;

    private LabServiceApply(IStore store) => _store = store;

    /// <summary>Services this apply created, for state.json (written once, by the caller).</summary>
    public List<LabServiceRecord> Created { get; } = [];

    public static async Task<LabServiceApply> ReadAsync(IStore store, CancellationToken cancellationToken)
    {
        var apply = new LabServiceApply(store);
        await apply.ReloadAsync(cancellationToken).ConfigureAwait(false);
        return apply;
    }

    public Versioned<Service>? Find(string ns, string name) => _byKey.GetValueOrDefault(ObjectKey.Of(ns, name));

    public Versioned<Service>? Owner(IPAddress ip) => _byIp.GetValueOrDefault(ip);

    /// <summary>
    /// The apply's node-port errors before anything is written: each Service's ports assigned in file order on a copy
    /// of the pool, so a port taken by another Service, out of range, or asked for twice in the file is reported.
    /// </summary>
    public void CheckNodePorts(IEnumerable<ServiceManifest> services, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(errors);
        var pool = _nodePorts.Clone();
        foreach (var s in services)
        {
            var existing = Find(s.Namespace, s.Name)?.Value;
            try
            {
                pool.Assign(Desired(s, existing?.ClusterIp ?? IPAddress.Any), existing);
            }
            catch (NodePortAllocationException e)
            {
                errors.Add(Owned($"Service/{s.Name}: {e.Message}", e, pool));
            }
        }
    }

    /// <summary>Creates or updates one Service; returns kubectl's word for what happened.</summary>
    public async Task<string> ApplyAsync(ServiceManifest s, CancellationToken cancellationToken)
    {
        var key = ObjectKey.Of(s.Namespace, s.Name);
        var before = Find(s.Namespace, s.Name);
        for (var attempt = 0; attempt < MaxAttempts; attempt++)
        {
            var existing = Find(s.Namespace, s.Name);
            // A Service keeps its ClusterIP; only one this apply creates gives up an address a concurrent writer took first.
            var keep = existing is not null && !(before is null && LostRace(existing));
            var ip = keep ? existing!.Value.ClusterIp : _pool.Allocate(s.ClusterIp);
            Service svc;
            try
            {
                svc = _nodePorts.Assign(Desired(s, ip), existing?.Value);
            }
            catch (NodePortAllocationException e)
            {
                throw new LabException(Owned($"Service/{s.Name}: {e.Message}", e, _nodePorts), e);
            }

            if (existing is not null && JsonSerializer.Serialize(existing.Value, Kinds.Service.TypeInfo) == JsonSerializer.Serialize(svc, Kinds.Service.TypeInfo))
            {
                return "unchanged";
            }

            var put = await _store.PutAsync(Kinds.Service, svc, expectedRevision: existing?.Revision ?? 0, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (!put.Succeeded)
            {
                await ReloadAsync(cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (before is null && !Created.Exists(r => r.Namespace == s.Namespace && r.Name == s.Name))
            {
                Created.Add(new LabServiceRecord(s.Namespace, s.Name, DateTimeOffset.UtcNow));
            }

            var mine = new Versioned<Service>(key, svc, put.Revision);
            if (put.Revision == _revision + 1)
            {
                // Nothing else was written since the view: it stays complete.
                Put(mine);
                _revision = put.Revision;
                return before is null ? "created" : "configured";
            }

            await ReloadAsync(cancellationToken).ConfigureAwait(false);
            if (before is null && Find(s.Namespace, s.Name) is { } written && LostNodePort(written) is { } lost)
            {
                // A concurrent writer took one of the node ports first: this Service is withdrawn, nothing half-made stays.
                await _store.DeleteAsync(Kinds.Service, key, written.Revision, cancellationToken).ConfigureAwait(false);
                Created.RemoveAll(r => r.Namespace == s.Namespace && r.Name == s.Name);
                throw new LabException(string.Create(CultureInfo.InvariantCulture,
                    $"Service/{s.Name}: node port {lost}: provided port is already allocated (to {_nodePorts.Owner(lost)}, written concurrently)"));
            }

            if (before is null && Find(s.Namespace, s.Name) is { } now && LostRace(now))
            {
                if (s.ClusterIp is not null)
                {
                    await _store.DeleteAsync(Kinds.Service, key, now.Revision, cancellationToken).ConfigureAwait(false);
                    Created.RemoveAll(r => r.Namespace == s.Namespace && r.Name == s.Name);
                    throw new LabException($"Service/{s.Name}: spec.clusterIP: Invalid value: \"{s.ClusterIp}\": provided IP is already allocated (to {Owner(ip)?.Key}, written concurrently)");
                }

                continue;
            }

            return before is null ? "created" : "configured";
        }

        throw new LabException($"Service/{s.Name}: the store kept changing under the apply ({MaxAttempts} attempts)");
    }

    private static Service Desired(ServiceManifest s, IPAddress clusterIp) => new()
    {
        Namespace = s.Namespace,
        Name = s.Name,
        ClusterIp = clusterIp,
        Type = s.Type,
        Ports = s.Ports,
        ExternalIps = s.ExternalIps,
        ExternalTrafficPolicy = s.ExternalTrafficPolicy,
        InternalTrafficPolicy = s.InternalTrafficPolicy,
        HealthCheckNodePort = s.HealthCheckNodePort,
        Selector = s.Selector,
        SessionAffinity = s.SessionAffinity,
        SessionAffinityTimeoutSeconds = s.SessionAffinityTimeoutSeconds,
    };

    // "already allocated" says to whom, as the ClusterIP message does.
    private static string Owned(string message, NodePortAllocationException e, NodePortPool pool) =>
        e.Error == NodePortAllocationError.InUse && pool.Owner(e.Port) is { } owner ? message + " (to " + owner + ")" : message;

    // A node port of this Service that another Service, written first, holds.
    private int? LostNodePort(Versioned<Service> mine)
    {
        foreach (var p in mine.Value.Ports.Select(p => p.NodePort).Append(mine.Value.HealthCheckNodePort).Where(p => p != 0))
        {
            if (_nodePorts.Owner(p) is { } owner && owner != mine.Key)
            {
                return p;
            }
        }

        return null;
    }

    // Another Service holds the same ClusterIP and was written first.
    private bool LostRace(Versioned<Service> mine) =>
        _byIp.TryGetValue(mine.Value.ClusterIp, out var owner) && owner.Key != mine.Key;

    private async Task ReloadAsync(CancellationToken cancellationToken)
    {
        var (services, revision) = await _store.ListAsync(Kinds.Service, cancellationToken).ConfigureAwait(false);
        _byKey = new Dictionary<string, Versioned<Service>>(services.Count, StringComparer.Ordinal);
        _byIp = new Dictionary<IPAddress, Versioned<Service>>(services.Count);
        // Oldest write first, so a ClusterIP two Services hold belongs to the one written first.
        foreach (var v in services.OrderBy(v => v.Revision))
        {
            Put(v);
        }

        _pool = new ClusterIpPool(Allocator, _byIp.Keys);
        _nodePorts = new NodePortPool(NodePortAllocator.Default);
        foreach (var v in services.OrderBy(v => v.Revision))
        {
            _nodePorts.Add(v.Value);
        }

        _revision = revision;
    }

    private void Put(Versioned<Service> v)
    {
        if (_byKey.TryGetValue(v.Key, out var old) && _byIp.TryGetValue(old.Value.ClusterIp, out var holder) && holder.Key == v.Key)
        {
            _byIp.Remove(old.Value.ClusterIp);
        }

        _byKey[v.Key] = v;
        _byIp.TryAdd(v.Value.ClusterIp, v);
    }
}
