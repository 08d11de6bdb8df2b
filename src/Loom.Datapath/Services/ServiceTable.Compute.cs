using System.Net;
using Loom.Core.Model;
using Loom.Core.Selection;

namespace Loom.Datapath.Services;

/// <summary>
/// Recomputing one Service and settling who owns each frontend. The full model sorts every port by key and lets the
/// first one keep a frontend (ClusterIP, protocol, port); here each frontend keeps its claimants sorted by the same key,
/// so a Service that frees or takes a frontend hands it over without looking at any other frontend.
/// </summary>
public sealed partial class ServiceTable
{
    private readonly Dictionary<FrontendKey, SortedList<string, ServicePortState>> _claims = [];
    private readonly Dictionary<FrontendKey, string> _winner = [];
    private readonly HashSet<FrontendKey> _shared = []; // frontends claimed by more than one port (the skipped ones' reasons)
    private readonly HashSet<string> _withSkips = new(StringComparer.Ordinal);

    // Node ports are settled among frontend owners only, as the full model checks them after frontends.
    private readonly Dictionary<NodePortKey, SortedList<string, ServicePortState>> _nodePortClaims = [];
    private readonly Dictionary<string, NodePortKey> _nodePortOf = new(StringComparer.Ordinal);
    private readonly HashSet<NodePortKey> _nodePortShared = [];

    private void Recompute(string key, HashSet<FrontendKey> contested)
    {
        if (_computed.Remove(key, out var old))
        {
            foreach (var p in old.Ports)
            {
                Unclaim(p, contested);
            }
        }

        _withSkips.Remove(key);
        if (!_services.TryGetValue(key, out var svc))
        {
            return;
        }

        var computed = Compute(key, svc);
        _computed[key] = computed;
        if (computed.Skips.Count > 0)
        {
            _withSkips.Add(key);
        }

        foreach (var p in computed.Ports)
        {
            Claim(p, contested);
        }
    }

    /// <summary>
    /// One Service as the full model sees it: refused if invalid, else its ports in key order minus the ones no backend
    /// can express or that repeat a name, with out-of-range affinity timeouts clamped (<see cref="ServiceModel.Renderable"/>).
    /// </summary>
    private Computed Compute(string key, Service svc)
    {
        var skips = new List<ServiceSkip>();
        List<ServicePortState> raw;
        try
        {
            if (ServiceModel.Invalid(svc) is { } invalid)
            {
                return new Computed([], [invalid]);
            }

            raw = [.. ServiceModel.PortsOf(svc, Selected(svc.Namespace, LabelSelector.ForService(svc.Selector)), LocalNode)];
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Deliberately broad, as in the agent's full pass: whatever a stored object makes the model throw costs only it.
            return new Computed([], [new ServiceSkip(RuleText.Printable(key, 256), "invalid", RuleText.Printable($"{e.GetType().Name}: {e.Message}", 1024))]);
        }

        var ports = new List<ServicePortState>(raw.Count);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var state in raw.OrderBy(PortKey, StringComparer.Ordinal))
        {
            var s = state;
            if (ServiceModel.Unrenderable(s) is { } bad)
            {
                skips.Add(ServiceModel.Reason(s, "unrenderable", "skipped: " + bad));
                continue;
            }

            if (!names.Add(PortKey(s)))
            {
                skips.Add(ServiceModel.Reason(s, "duplicate-name", "skipped: another port has the same service, port name and protocol"));
                continue;
            }

            if (ServiceModel.ClampAffinity(ref s) is { } clamped)
            {
                skips.Add(clamped);
            }

            ports.Add(s);
        }

        // Kept for every Service until it changes: no empty list, no spare capacity (10,000 Services, 1 MB less).
        return new Computed(ports.ToArray(), skips.Count == 0 ? [] : skips.ToArray());
    }

    private void Claim(ServicePortState p, HashSet<FrontendKey> contested)
    {
        var f = FrontendKey.Of(p);
        if (!_claims.TryGetValue(f, out var claim))
        {
            _claims[f] = claim = new SortedList<string, ServicePortState>(StringComparer.Ordinal);
        }

        claim[PortKey(p)] = p;
        if (claim.Count > 1)
        {
            _shared.Add(f);
        }

        contested.Add(f);
    }

    private void Unclaim(ServicePortState p, HashSet<FrontendKey> contested)
    {
        var f = FrontendKey.Of(p);
        if (_claims.TryGetValue(f, out var claim) && claim.Remove(PortKey(p)))
        {
            if (claim.Count == 0)
            {
                _claims.Remove(f);
            }

            if (claim.Count <= 1)
            {
                _shared.Remove(f);
            }

            contested.Add(f);
        }
    }

    /// <summary>
    /// Hands each touched frontend to its first claimant and records, per port key, how the programmed state moved: all
    /// old owners step down before the new ones step up, so a port whose frontend changed ends as one update.
    /// </summary>
    private void Settle(HashSet<FrontendKey> contested)
    {
        var before = new Dictionary<string, ServicePortState?>(StringComparer.Ordinal);
        foreach (var f in contested)
        {
            if (_winner.Remove(f, out var key))
            {
                before.TryAdd(key, _programmed.GetValueOrDefault(key));
                _programmed.Remove(key);
            }
        }

        foreach (var f in contested)
        {
            if (_claims.TryGetValue(f, out var claim))
            {
                var (key, state) = (claim.Keys[0], claim.Values[0]);
                before.TryAdd(key, _programmed.GetValueOrDefault(key));
                _programmed[key] = state;
                _winner[f] = key;
            }
        }

        SettleNodePorts(before);
        foreach (var (key, was) in before)
        {
            var now = _programmed.GetValueOrDefault(key);
            if (!Equals(was, now))
            {
                _delta[key] = now;
            }
        }
    }

    /// <summary>
    /// After frontends changed hands (<paramref name="before"/> holds every port whose programmed state may have moved):
    /// each touched node port goes to its first claimant in key order; the others are programmed without it.
    /// </summary>
    private void SettleNodePorts(Dictionary<string, ServicePortState?> before)
    {
        var contested = new HashSet<NodePortKey>();
        foreach (var key in before.Keys)
        {
            if (_nodePortOf.Remove(key, out var old) && _nodePortClaims.TryGetValue(old, out var claim) && claim.Remove(key))
            {
                if (claim.Count == 0)
                {
                    _nodePortClaims.Remove(old);
                }

                contested.Add(old);
            }

            if (_programmed.TryGetValue(key, out var state) && state.NodePort != 0)
            {
                var np = new NodePortKey(state.Frontend.Protocol, state.NodePort);
                if (!_nodePortClaims.TryGetValue(np, out var claims))
                {
                    _nodePortClaims[np] = claims = new SortedList<string, ServicePortState>(StringComparer.Ordinal);
                }

                claims[key] = state;
                _nodePortOf[key] = np;
                contested.Add(np);
            }
        }

        foreach (var np in contested)
        {
            if (!_nodePortClaims.TryGetValue(np, out var claim))
            {
                _nodePortShared.Remove(np);
                continue;
            }

            if (claim.Count > 1)
            {
                _nodePortShared.Add(np);
            }
            else
            {
                _nodePortShared.Remove(np);
            }

            for (var i = 0; i < claim.Count; i++)
            {
                var key = claim.Keys[i];
                before.TryAdd(key, _programmed.GetValueOrDefault(key));
                _programmed[key] = i == 0 ? claim.Values[i] : claim.Values[i] with { NodePort = 0 };
            }
        }
    }

    /// <summary>The ports that lost their node port to an earlier one, with the full model's reason.</summary>
    private IEnumerable<ServiceSkip> NodePortSkips() =>
        _nodePortShared.SelectMany(np => _nodePortClaims[np].Values.Skip(1)
            .Select(p => ServiceModel.DuplicateNodePort(p, _nodePortClaims[np].Values[0].Name)));

    /// <summary>A node port as the kernel tells them apart: protocol and port.</summary>
    private readonly record struct NodePortKey(Protocol Protocol, int Port);

    /// <summary>A frontend as the backends key it: ClusterIP, protocol, port.</summary>
    private readonly record struct FrontendKey(IPAddress Address, Protocol Protocol, int Port)
    {
        public static FrontendKey Of(ServicePortState p) => new(p.Frontend.Address, p.Frontend.Protocol, p.Frontend.Port);
    }

    /// <summary>A namespace's endpoints by label pair, and its Services under their selectors' first pair.</summary>
    private sealed class NamespaceIndex
    {
        private readonly Dictionary<(string Key, string Value), Dictionary<string, Endpoint>> _endpoints = [];
        // A pair held by one Service maps to its key, a HashSet only once two share it: with 10,000 Services of
        // their own selectors, 10,000 one-element sets (2 MB) are not kept.
        private readonly Dictionary<(string Key, string Value), object> _services = [];

        public void AddEndpoint(string key, Endpoint e)
        {
            foreach (var pair in e.Labels)
            {
                if (!_endpoints.TryGetValue((pair.Key, pair.Value), out var set))
                {
                    _endpoints[(pair.Key, pair.Value)] = set = new Dictionary<string, Endpoint>(StringComparer.Ordinal);
                }

                set[key] = e;
            }
        }

        public void RemoveEndpoint(string key, Endpoint e)
        {
            foreach (var pair in e.Labels)
            {
                if (_endpoints.TryGetValue((pair.Key, pair.Value), out var set) && set.Remove(key) && set.Count == 0)
                {
                    _endpoints.Remove((pair.Key, pair.Value));
                }
            }
        }

        /// <summary>A Service can only select an endpoint that carries every pair of its selector, so one pair finds it.</summary>
        public void AddService(string key, Service s)
        {
            if (FirstPair(s) is not { } pair)
            {
                return;
            }

            if (!_services.TryGetValue(pair, out var held))
            {
                _services[pair] = key;
            }
            else if (held is HashSet<string> set)
            {
                set.Add(key);
            }
            else if ((string)held != key)
            {
                _services[pair] = new HashSet<string>(StringComparer.Ordinal) { (string)held, key };
            }
        }

        public void RemoveService(string key, Service s)
        {
            if (FirstPair(s) is not { } pair || !_services.TryGetValue(pair, out var held))
            {
                return;
            }

            if (held is HashSet<string> set)
            {
                if (set.Remove(key) && set.Count == 1)
                {
                    _services[pair] = set.First();
                }
            }
            else if ((string)held == key)
            {
                _services.Remove(pair);
            }
        }

        /// <summary>Adds to <paramref name="dirty"/> every Service whose selector could match <paramref name="labels"/>.</summary>
        public void MarkSelecting(IReadOnlyDictionary<string, string> labels, HashSet<string> dirty)
        {
            foreach (var pair in labels)
            {
                if (_services.TryGetValue((pair.Key, pair.Value), out var held))
                {
                    if (held is HashSet<string> set)
                    {
                        dirty.UnionWith(set);
                    }
                    else
                    {
                        dirty.Add((string)held);
                    }
                }
            }
        }

        public IEnumerable<Endpoint> Select(LabelSelector selector)
        {
            if (selector.IsNothing || selector.MatchLabels.Count == 0)
            {
                return []; // Services select by matchLabels only (ForService); an empty one selects nothing
            }

            Dictionary<string, Endpoint>? smallest = null;
            foreach (var pair in selector.MatchLabels)
            {
                if (!_endpoints.TryGetValue((pair.Key, pair.Value), out var set))
                {
                    return [];
                }

                if (smallest is null || set.Count < smallest.Count)
                {
                    smallest = set;
                }
            }

            return smallest!.Values.Where(e => selector.Matches(e.Labels));
        }

        private static (string, string)? FirstPair(Service s) =>
            s.Selector is { Count: > 0 } sel ? sel.MinBy(p => p.Key, StringComparer.Ordinal) is var p ? (p.Key, p.Value) : null : null;
    }
}
