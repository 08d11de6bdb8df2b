using System.Globalization;
using System.Net;
using k8s.Models;
using Loom.Core.Model;
using Loom.Core.Selection;
using Loom.Core.Validation;
using Endpoint = Loom.Core.Model.Endpoint;
using NetworkPolicy = Loom.Core.Model.NetworkPolicy;
using Node = Loom.Core.Model.Node;
using Service = Loom.Core.Model.Service;

namespace Loom.Kubernetes;

/// <summary>
/// API objects to Loom's model, as the store source would hold them, so every controller runs unchanged. What the model
/// cannot express is skipped (null, with the reason in <c>skipped</c>): headless and ExternalName Services, SCTP ports,
/// IPv6-only objects. Partial: .Policy (NetworkPolicy).
/// </summary>
internal static partial class Translate
{
    public const string PublicIpAnnotation = "loom.io/public-ip";
    public const string VtepMacAnnotation = "loom.io/vtep-mac";
    public const string UnderlayInterfaceAnnotation = "loom.io/underlay-interface";
    public const string ServiceNameLabel = "kubernetes.io/service-name";

    /// <summary>
    /// A Node: its underlay from Loom's annotation (the address its agent tunnels from) else its InternalIP; pod CIDRs
    /// from spec.podCIDRs; per-network blocks and readiness from its LoomNode when there is one, else the kubelet's Ready.
    /// </summary>
    public static Node? Node(V1Node n, LoomNodeStatus? loom, out string? skipped)
    {
        skipped = null;
        var annotations = n.Metadata?.Annotations;
        var ipText = Get(annotations, PublicIpAnnotation)
                     ?? n.Status?.Addresses?.FirstOrDefault(a => a.Type == "InternalIP" && IsV4(a.Address))?.Address;
        if (ipText is null || !IPAddress.TryParse(ipText, out var ip))
        {
            skipped = "no IPv4 InternalIP address";
            return null;
        }

        var cidrs = (n.Spec?.PodCIDRs is { Count: > 0 } list ? list : n.Spec?.PodCIDR is { } one ? [one] : [])
            .Select(c => IPNetwork.TryParse(c, out var net) ? net : (IPNetwork?)null)
            .OfType<IPNetwork>().Where(c => c.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork).ToList();
        var kubeletReady = n.Status?.Conditions?.FirstOrDefault(c => c.Type == "Ready");
        return new Node
        {
            Name = n.Metadata!.Name,
            UnderlayIp = ip,
            UnderlayInterface = Get(annotations, UnderlayInterfaceAnnotation) ?? loom?.UnderlayInterface ?? "",
            PodCidrs = cidrs,
            Labels = Labels(n.Metadata.Labels),
            VtepMac = Get(annotations, VtepMacAnnotation) ?? loom?.VtepMac,
            Networks = loom?.Networks ?? new Dictionary<string, NodeNetwork>(),
            Ready = loom?.Ready ?? kubeletReady?.Status == "True",
            Heartbeat = loom?.Heartbeat ?? (kubeletReady?.LastHeartbeatTime is { } t ? new DateTimeOffset(DateTime.SpecifyKind(t, DateTimeKind.Utc)) : default),
            Taints = [.. (n.Spec?.Taints ?? []).Select(Taint).OfType<Taint>()],
            Unschedulable = n.Spec?.Unschedulable == true,
        };
    }

    private static Taint? Taint(V1Taint t) => Enum.TryParse<TaintEffect>(t.Effect, out var effect) ? new Taint(t.Key, t.Value, effect) : null;

    /// <summary>The pod CIDRs a Node holds (IPv4), for the claims the agent's peer check wants.</summary>
    public static IReadOnlyList<IPNetwork> PodCidrs(V1Node n) =>
        [.. (n.Spec?.PodCIDRs is { Count: > 0 } list ? list : n.Spec?.PodCIDR is { } one ? [one] : [])
            .Select(c => IPNetwork.TryParse(c, out var net) ? net : (IPNetwork?)null).OfType<IPNetwork>()
            .Where(c => c.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)];

    /// <summary>
    /// A Pod as an Endpoint: scheduled, not hostNetwork, with an IPv4 address; ready from its Ready condition, refined by
    /// its EndpointSlice conditions when a slice targets it (ready false while terminating).
    /// </summary>
    public static Endpoint? Endpoint(V1Pod p, bool? sliceReady, out string? skipped)
    {
        skipped = null;
        if (p.Spec?.HostNetwork == true)
        {
            skipped = "hostNetwork";
            return null;
        }

        var ips = (p.Status?.PodIPs?.Select(i => i.Ip) ?? (p.Status?.PodIP is { } one ? [one] : []))
            .Select(t => IPAddress.TryParse(t, out var a) ? a : null).OfType<IPAddress>()
            .Where(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork).ToList();
        if (ips.Count == 0 || string.IsNullOrEmpty(p.Spec?.NodeName))
        {
            skipped = "no IPv4 address yet";
            return null;
        }

        var podReady = p.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true
                       && p.Metadata?.DeletionTimestamp is null && p.Status?.Phase is "Running";
        var containerId = p.Status?.ContainerStatuses?.Select(c => c.ContainerID).FirstOrDefault(id => !string.IsNullOrEmpty(id)) ?? "";
        return new Endpoint
        {
            Namespace = p.Metadata!.NamespaceProperty ?? "default",
            Name = p.Metadata.Name,
            Node = p.Spec!.NodeName,
            ContainerId = containerId,
            IPs = ips,
            Labels = Labels(p.Metadata.Labels),
            Ready = sliceReady ?? podReady,
            Ports = [.. (p.Spec.Containers ?? []).SelectMany(c => c.Ports ?? [])
                .Select(cp => Protocol(cp.Protocol) is { } proto ? new ContainerPort(cp.Name, cp.ContainerPort, proto) : null).OfType<ContainerPort>()],
        };
    }

    /// <summary>
    /// A slice's verdict on the pods it targets: ready as the slice says (false while terminating); null for a pod
    /// no slice names. Several slices naming a pod: ready if any says so.
    /// </summary>
    public static IEnumerable<(string PodKey, bool Ready)> SliceConditions(V1EndpointSlice s) =>
        (s.Endpoints ?? []).Where(e => e.TargetRef is { Kind: "Pod" })
            .Select(e => ($"{e.TargetRef.NamespaceProperty ?? s.Metadata?.NamespaceProperty}/{e.TargetRef.Name}",
                e.Conditions?.Ready ?? true)); // discovery/v1: a nil ready is "unknown", consumers read it as ready

    /// <summary>
    /// A Service: ClusterIP, NodePort or LoadBalancer with an IPv4 cluster IP. A named targetPort resolves to the number
    /// its EndpointSlices carry for that port (the EndpointSlice controller resolves it per pod); unresolved, the port
    /// is skipped until a slice names it.
    /// </summary>
    public static Service? Service(V1Service s, IEnumerable<V1EndpointSlice> slices, out string? skipped)
    {
        skipped = null;
        var spec = s.Spec;
        if (spec is null || spec.Type == "ExternalName")
        {
            skipped = "ExternalName (DNS only)";
            return null;
        }

        if (spec.ClusterIP is null or "" or "None" || !IPAddress.TryParse(spec.ClusterIP, out var clusterIp)
            || clusterIp.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
        {
            skipped = spec.ClusterIP == "None" ? "headless (DNS only)" : "no IPv4 cluster IP";
            return null;
        }

        var type = spec.Type switch
        {
            "NodePort" => ServiceType.NodePort,
            "LoadBalancer" => ServiceType.LoadBalancer,
            _ => ServiceType.ClusterIP,
        };
        var slicePorts = slices.SelectMany(x => x.Ports ?? []).Where(p => p.Port is not null).ToList();
        var ports = new List<ServicePort>();
        foreach (var p in spec.Ports ?? [])
        {
            if (Protocol(p.Protocol) is not { } proto)
            {
                continue;
            }

            var target = p.TargetPort?.Value;
            int targetPort;
            if (string.IsNullOrEmpty(target))
            {
                targetPort = p.Port;
            }
            else if (!int.TryParse(target, NumberStyles.None, CultureInfo.InvariantCulture, out targetPort))
            {
                var resolved = slicePorts.FirstOrDefault(sp => sp.Name == (p.Name ?? "") && (sp.Protocol ?? "TCP") == (p.Protocol ?? "TCP"));
                if (resolved is null)
                {
                    continue;
                }

                targetPort = resolved.Port!.Value;
            }

            ports.Add(new ServicePort(string.IsNullOrEmpty(p.Name) ? null : p.Name, proto, p.Port, targetPort, p.NodePort ?? 0));
        }

        return new Service
        {
            Namespace = s.Metadata!.NamespaceProperty ?? "default",
            Name = s.Metadata.Name,
            ClusterIp = clusterIp,
            Type = type,
            Ports = ports,
            ExternalIps = [.. (spec.ExternalIPs ?? []).Select(t => IPAddress.TryParse(t, out var a) ? a : null).OfType<IPAddress>()
                .Where(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)],
            ExternalTrafficPolicy = spec.ExternalTrafficPolicy == "Local" ? TrafficPolicy.Local : TrafficPolicy.Cluster,
            InternalTrafficPolicy = spec.InternalTrafficPolicy == "Local" ? TrafficPolicy.Local : TrafficPolicy.Cluster,
            HealthCheckNodePort = spec.HealthCheckNodePort ?? 0,
            Selector = Labels(spec.Selector),
            SessionAffinity = spec.SessionAffinity == "ClientIP" ? SessionAffinity.ClientIP : SessionAffinity.None,
            SessionAffinityTimeoutSeconds = spec.SessionAffinityConfig?.ClientIP?.TimeoutSeconds ?? 10800,
        };
    }

    public static ClusterNamespace Namespace(V1Namespace n) => new() { Name = n.Metadata!.Name, Labels = Labels(n.Metadata.Labels) };

    private static Protocol? Protocol(string? text) => text switch
    {
        null or "" or "TCP" => Core.Model.Protocol.Tcp,
        "UDP" => Core.Model.Protocol.Udp,
        _ => null, // SCTP: the datapath has no SCTP
    };

    private static Dictionary<string, string> Labels(IDictionary<string, string>? labels) =>
        labels is null ? [] : new Dictionary<string, string>(labels, StringComparer.Ordinal);

    internal static string? Get(IDictionary<string, string>? map, string key) => map is not null && map.TryGetValue(key, out var v) ? v : null;

    private static bool IsV4(string? text) => IPAddress.TryParse(text, out var a) && a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork;

    /// <summary>A label selector in the API's shape, checked as the API server checks one; null (with errors) if invalid.</summary>
    private static LabelSelector? Selector(V1LabelSelector? s, string field, List<FieldError> errors) =>
        s is null
            ? null
            : LabelSelector.Create(
                s.MatchLabels is null ? null : new Dictionary<string, string>(s.MatchLabels, StringComparer.Ordinal),
                s.MatchExpressions?.Select(e => (e.Key, e.OperatorProperty, (IReadOnlyList<string>)[.. e.Values ?? []])).ToList(),
                field, errors);
}
