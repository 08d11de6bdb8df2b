using Loom.Core.Model;
using Loom.Core.Selection;

namespace Loom.Datapath.Services;

/// <summary>
/// <see cref="ServiceModel.Compute(IEnumerable{Service}, IEnumerable{Endpoint}, ICollection{ServiceSkip})"/> kept
/// incrementally: Services and Endpoints go in one change at a time, and <see cref="Drain"/> hands out only the service
/// ports whose programmed state changed since the last drain. A changed endpoint recomputes just the services whose
/// selectors could match its old or new labels (found through the selectors' first pair), so one pod's change costs the
/// same with 10 or 10,000 Services. The result equals the full model's at every drain (a property test holds it to
/// that), skip reasons included. Not thread-safe: one controller owns it.
/// </summary>
public sealed partial class ServiceTable
{
    private readonly Dictionary<string, Service> _services = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Endpoint> _endpoints = new(StringComparer.Ordinal);
    private readonly Dictionary<string, NamespaceIndex> _namespaces = new(StringComparer.Ordinal);
    private readonly HashSet<string> _dirty = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Computed> _computed = new(StringComparer.Ordinal);

    /// <summary>Service ports programmed now, by <see cref="PortKey"/>.</summary>
    private readonly Dictionary<string, ServicePortState> _programmed = new(StringComparer.Ordinal);

    /// <summary>Changes since the last drain: the new state, or null for a port no longer programmed.</summary>
    private readonly Dictionary<string, ServicePortState?> _delta = new(StringComparer.Ordinal);

    /// <summary>The ports programmed now, by <see cref="PortKey"/>.</summary>
    public IReadOnlyDictionary<string, ServicePortState> Programmed => _programmed;

    public int ServiceCount => _services.Count;

    /// <summary>The node this table computes for: its endpoints are local (<see cref="BackendAddress.IsLocal"/>). Null: none is.</summary>
    public string? LocalNode { get; init; }

    /// <summary>The key a port is programmed under (and ordered by, as the renderers order): name, then protocol.</summary>
    public static string PortKey(ServicePortState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        return state.Name + "/" + (Enum.IsDefined(state.Frontend.Protocol) ? state.Frontend.ProtocolName : "?");
    }

    public void SetService(string key, Service service)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(service);
        if (_services.TryGetValue(key, out var old))
        {
            IndexFor(old.Namespace)?.RemoveService(key, old);
        }

        _services[key] = service;
        if (service.Namespace is not null)
        {
            Index(service.Namespace).AddService(key, service);
        }

        _dirty.Add(key);
    }

    public void RemoveService(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (_services.Remove(key, out var old))
        {
            IndexFor(old.Namespace)?.RemoveService(key, old);
            _dirty.Add(key);
        }
    }

    public void SetEndpoint(string key, Endpoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(endpoint);
        RemoveEndpoint(key);
        if (!Usable(endpoint))
        {
            return;
        }

        _endpoints[key] = endpoint;
        var index = Index(endpoint.Namespace);
        index.AddEndpoint(key, endpoint);
        index.MarkSelecting(endpoint.Labels, _dirty);
    }

    public void RemoveEndpoint(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (_endpoints.Remove(key, out var old) && IndexFor(old.Namespace) is { } index)
        {
            index.RemoveEndpoint(key, old);
            index.MarkSelecting(old.Labels, _dirty);
        }
    }

    /// <summary>
    /// Recomputes what changed and returns the ports to write (added or changed) and the keys to remove, each once,
    /// in port-key order; empty when nothing a backend programs changed.
    /// </summary>
    public ServiceTableDelta Drain()
    {
        var contested = new HashSet<FrontendKey>();
        foreach (var key in _dirty)
        {
            Recompute(key, contested);
        }

        _dirty.Clear();
        Settle(contested);

        var upserts = new List<ServicePortState>();
        var removed = new List<string>();
        foreach (var (key, state) in _delta.OrderBy(d => d.Key, StringComparer.Ordinal))
        {
            if (state is null)
            {
                removed.Add(key);
            }
            else
            {
                upserts.Add(state);
            }
        }

        _delta.Clear();
        return new ServiceTableDelta(upserts, removed);
    }

    /// <summary>Why ports are not programmed or were adjusted, per Service, as the full model reports them (by Service key).</summary>
    public IReadOnlyList<ServiceSkip> Skipped()
    {
        var all = new List<(string Order, ServiceSkip Skip)>();
        foreach (var key in _withSkips)
        {
            all.AddRange(_computed[key].Skips.Select(s => (key, s)));
        }

        foreach (var f in _shared)
        {
            var claim = _claims[f];
            for (var i = 1; i < claim.Count; i++)
            {
                var p = claim.Values[i];
                all.Add((ObjectKey.Of(p.Name.Namespace, p.Name.Name),
                    ServiceModel.Reason(p, "duplicate-frontend", $"skipped: frontend {p.Frontend} is already taken by {claim.Values[0].Name}")));
            }
        }

        all.AddRange(NodePortSkips().Select(s => (s.Service, s)));
        return [.. all.OrderBy(s => s.Order, StringComparer.Ordinal).Select(s => s.Skip)];
    }

    private static bool Usable(Endpoint e) => e.Ready && e.Namespace is not null && e.Labels is not null && e.IPs is not null;

    private NamespaceIndex Index(string ns)
    {
        if (!_namespaces.TryGetValue(ns, out var index))
        {
            _namespaces[ns] = index = new NamespaceIndex();
        }

        return index;
    }

    private NamespaceIndex? IndexFor(string? ns) => ns is not null && _namespaces.TryGetValue(ns, out var index) ? index : null;

    /// <summary>The endpoints a selector picks in a namespace (cheapest pair first, then checked in full).</summary>
    private IEnumerable<Endpoint> Selected(string ns, LabelSelector selector) =>
        IndexFor(ns) is { } index ? index.Select(selector) : [];

    /// <summary>One Service's ports and skip reasons, as the full model finds them before frontends are compared across Services.</summary>
    private sealed record Computed(IReadOnlyList<ServicePortState> Ports, IReadOnlyList<ServiceSkip> Skips);
}

/// <summary>What changed since the last <see cref="ServiceTable.Drain"/>: ports to write and port keys to remove.</summary>
public sealed record ServiceTableDelta(IReadOnlyList<ServicePortState> Upserts, IReadOnlyList<string> Removed)
{
    public bool IsEmpty => Upserts.Count == 0 && Removed.Count == 0;
}
