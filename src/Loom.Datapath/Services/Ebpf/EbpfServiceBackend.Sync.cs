using System.Diagnostics;
using Loom.Linux.Bpf;

namespace Loom.Datapath.Services.Ebpf;

public sealed partial class EbpfServiceBackend
{
    private readonly HashSet<int> _attached = [];
    private Dictionary<LbServiceKey, ServicePortState[]> _frontends = [];
    private IReadOnlyList<System.Net.IPAddress>? _nodeAddresses;
    private LbServiceSync? _sync;
    private long _lastFull;
    private bool _interfacesChanged;

    /// <summary>
    /// Writes the services' entries. The first sync reads the maps (adopting a previous run's) and repairs them; later
    /// syncs write only the entries of services that differ from the last sync's. A full pass again after
    /// <see cref="EbpfServiceOptions.FullResyncInterval"/>, after a failed sync, or when <see cref="RequestFullResync"/>
    /// asked for it. The tc programs go on <see cref="EbpfServiceOptions.Interfaces"/> on a full pass and, otherwise, on
    /// those not attached yet after <see cref="InterfacesChanged"/>.
    /// </summary>
    public void Sync(IReadOnlyCollection<ServicePortState> desired)
    {
        ArgumentNullException.ThrowIfNull(desired);
        var obj = EnsureLoaded();
        var sync = _sync ??= new LbServiceSync(LbMapSet.Of(obj), _options.Algorithm == LbAlgorithm.Maglev ? _options.MaglevTableSize : 0);
        if (sync.Adopted && Stopwatch.GetElapsedTime(_lastFull) >= _options.FullResyncInterval)
        {
            sync.Invalidate();
        }

        var full = !sync.Adopted;
        var frontends = new List<ServicePortState>(desired.Count);
        var expanded = new Dictionary<LbServiceKey, ServicePortState[]>();
        foreach (var s in desired)
        {
            var of = Frontends(s);
            frontends.AddRange(of);
            expanded[MasterKey(s.Frontend)] = of;
        }

        if (full)
        {
            WriteConfig(obj);
        }

        sync.Sync(frontends);
        _frontends = expanded;
        if (full)
        {
            _lastFull = Stopwatch.GetTimestamp();
        }

        AttachInterfaces(full);
        if (full)
        {
            AttachUnderlay();
        }
    }

    /// <summary>Writes only the changed services' entries (<see cref="LbServiceSync.Update"/>); attaches to new veths if asked to.</summary>
    public void Update(IReadOnlyCollection<ServicePortState> changed, IReadOnlyCollection<ServicePortState> removed)
    {
        if (_sync is not { Adopted: true } sync)
        {
            throw new InvalidOperationException("ebpf: an incremental update needs a full sync first");
        }

        ArgumentNullException.ThrowIfNull(changed);
        ArgumentNullException.ThrowIfNull(removed);
        var writes = new List<ServicePortState>(changed.Count);
        var gone = new List<ServicePortState>();
        var now = new Dictionary<LbServiceKey, ServicePortState[]>();
        foreach (var s in changed)
        {
            var of = Frontends(s);
            writes.AddRange(of);
            now[MasterKey(s.Frontend)] = of;
        }

        foreach (var s in removed)
        {
            // A removed service's frontends as last written (its node ports may differ from what the caller hands in).
            gone.AddRange(_frontends.TryGetValue(MasterKey(s.Frontend), out var had) ? had : Frontends(s));
        }

        foreach (var (key, of) in now)
        {
            // Frontends a changed service no longer has (its node port or an external IP went).
            if (_frontends.TryGetValue(key, out var had))
            {
                gone.AddRange(had.Where(h => !of.Any(o => o.Frontend == h.Frontend)));
            }
        }

        sync.Update(writes, gone);
        foreach (var s in removed)
        {
            _frontends.Remove(MasterKey(s.Frontend));
        }

        foreach (var (key, of) in now)
        {
            _frontends[key] = of;
        }

        AttachInterfaces(false);
    }

    /// <summary>The lb4_svc frontends of one service port (ClusterIP, node ports on the node addresses, external IPs).</summary>
    private ServicePortState[] Frontends(ServicePortState s) => [.. LbFrontends.Of(s, _nodeAddresses ??= LbFrontends.NodeAddresses(_options.Proxy))];

    /// <summary>
    /// lb4_config: the node address node-port traffic to a remote backend leaves with; lb4_ct's lifetimes; since when the
    /// programs serve the node, kept from the pinned map across agent restarts (a new map starts the wait again).
    /// </summary>
    private void WriteConfig(BpfObject obj)
    {
        var node = _options.Proxy.NodeIps.FirstOrDefault(ip => ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork);
        var map = obj.Map<uint, LbConfig>(LbMaps.Config);
        var since = map.TryLookup(0, out var old) && old.SinceNs != 0 ? old.SinceNs : LbConntrackGc.MonotonicNs();
        map.Update(0, _options.ConnTrack.Apply(new LbConfig { NodeAddress = node is null ? 0 : LbMaps.ToNetwork(node), SinceNs = since }));
    }

    /// <summary>Attaches the tc programs to veths that appeared since the last look (a pod was added), outside any sync.</summary>
    public void AttachNewInterfaces()
    {
        EnsureLoaded();
        _interfacesChanged = true;
        AttachInterfaces(false);
    }

    public bool NeedsFullSync => _sync is not { Adopted: true };

    /// <summary>Makes the next <see cref="Sync"/> re-read the maps and repair whatever differs from the desired state.</summary>
    public void RequestFullResync() => _sync?.Invalidate();

    public void RequestFullSync() => RequestFullResync();

    /// <summary>Makes the next <see cref="Sync"/> ask <see cref="EbpfServiceOptions.Interfaces"/> for new veths (a pod was added).</summary>
    public void InterfacesChanged() => _interfacesChanged = true;

    /// <summary>True if the next <see cref="Sync"/> reads the maps again.</summary>
    public bool FullResyncPending => _sync is not { Adopted: true };

    private void AttachInterfaces(bool full)
    {
        if (_options.Interfaces is not { } interfaces || !(full || _interfacesChanged))
        {
            return;
        }

        _interfacesChanged = false;
        if (full)
        {
            PruneInterfaces();
        }

        foreach (var ifindex in interfaces())
        {
            // A full pass checks every veth's filters (repairing drift); otherwise only new veths are touched.
            if (full || !_attached.Contains(ifindex))
            {
                Attach(ifindex);
            }
        }
    }
}
