using System.Net;
using System.Net.Sockets;
using Loom.Core.Model;
using Loom.Core.Selection;
using Loom.Core.Validation;

namespace Loom.Datapath.Services;

/// <summary>Turns the store's Services and Endpoints into the per-port state the backends program.</summary>
public static partial class ServiceModel
{
    /// <summary>
    /// One <see cref="ServicePortState"/> per service port, ordered by name. Backends are the ready endpoints in the
    /// service's namespace whose labels include every selector pair (an empty selector selects nothing, as for a
    /// Kubernetes service without selector), at their IPv4 address and the port's target port (the service port when
    /// the target is 0); sorted and de-duplicated so the rendering is stable.
    /// </summary>
    public static IReadOnlyList<ServicePortState> Compute(IEnumerable<Service> services, IEnumerable<Endpoint> endpoints) =>
        Compute(services, endpoints, null);

    /// <summary>
    /// As <see cref="Compute(IEnumerable{Service}, IEnumerable{Endpoint})"/>; a Service the API server would refuse
    /// (<see cref="ServiceValidation"/>) and a port no backend can program (<see cref="Renderable"/>) are left out, each
    /// with a one-line reason in <paramref name="skipped"/>, so one bad object costs only itself, never everyone's sync.
    /// </summary>
    /// <param name="localNode">The node computing the state: its endpoints are marked <see cref="BackendAddress.IsLocal"/>.</param>
    public static IReadOnlyList<ServicePortState> Compute(IEnumerable<Service> services, IEnumerable<Endpoint> endpoints, ICollection<ServiceSkip>? skipped, string? localNode = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(endpoints);
        // A stored endpoint missing its labels or addresses (JSON null) selects nothing rather than failing the sync.
        var byNamespace = endpoints.Where(e => e.Ready && e.Namespace is not null && e.Labels is not null && e.IPs is not null)
            .GroupBy(e => e.Namespace, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => new LabelIndex<Endpoint>(g, e => e.Labels), StringComparer.Ordinal);
        var result = new List<ServicePortState>();
        foreach (var svc in services)
        {
            if (Invalid(svc) is { } invalid)
            {
                skipped?.Add(invalid);
                continue;
            }

            var selector = LabelSelector.ForService(svc.Selector);
            result.AddRange(PortsOf(svc, byNamespace.TryGetValue(svc.Namespace, out var index) ? index.Select(selector) : [], localNode));
        }

        return Renderable(result, skipped);
    }

    /// <summary>Why the API server would refuse <paramref name="svc"/>, or null if it would not.</summary>
    internal static ServiceSkip? Invalid(Service svc)
    {
        if (ServiceValidation.Validate(svc) is not { Count: > 0 } errors)
        {
            return null;
        }

        var service = RuleText.Printable(svc.Namespace + "/" + svc.Name, 256);
        return new ServiceSkip(service, "invalid", $"service {service}: {RuleText.Printable(string.Join("; ", errors), 1024)}");
    }

    /// <summary>
    /// One state per port of <paramref name="svc"/>, backed by the first IPv4 address of each selected endpoint; those on
    /// <paramref name="localNode"/> are marked local.
    /// </summary>
    internal static IEnumerable<ServicePortState> PortsOf(Service svc, IEnumerable<Endpoint> selected, string? localNode = null)
    {
        var ips = selected.SelectMany(e => e.IPs.Where(ip => ip.AddressFamily == AddressFamily.InterNetwork).Take(1)
                .Select(ip => (Ip: ip, Local: localNode is not null && e.Node == localNode)))
            .DistinctBy(x => x.Ip)
            .OrderBy(x => x.Ip, AddressComparer.Instance)
            .ToList();
        var external = svc.Type != ServiceType.ClusterIP || svc.ExternalIps.Count > 0;
        foreach (var port in svc.Ports)
        {
            var target = port.TargetPort == 0 ? port.Port : port.TargetPort;
            yield return new ServicePortState(
                new ServicePortName(svc.Namespace, svc.Name, port.Name),
                new Frontend(svc.ClusterIp, port.Protocol, port.Port),
                svc.SessionAffinity,
                svc.SessionAffinityTimeoutSeconds,
                ips.Select(x => new BackendAddress(x.Ip, target) { IsLocal = x.Local }).ToArray())
            {
                Type = svc.Type,
                NodePort = svc.Type == ServiceType.ClusterIP ? 0 : port.NodePort,
                ExternalIps = svc.ExternalIps,
                ExternalTrafficPolicy = external ? svc.ExternalTrafficPolicy : TrafficPolicy.Cluster,
                InternalTrafficPolicy = svc.InternalTrafficPolicy,
                HealthCheckNodePort = svc.Type == ServiceType.LoadBalancer && svc.ExternalTrafficPolicy == TrafficPolicy.Local ? svc.HealthCheckNodePort : 0,
            };
        }
    }

    private sealed class AddressComparer : IComparer<IPAddress>
    {
        public static readonly AddressComparer Instance = new();

        public int Compare(IPAddress? x, IPAddress? y) =>
            x is null || y is null ? Comparer<object>.Default.Compare(x, y) : x.GetAddressBytes().AsSpan().SequenceCompareTo(y.GetAddressBytes());
    }
}
