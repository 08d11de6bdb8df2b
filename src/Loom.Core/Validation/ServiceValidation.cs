using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Loom.Core.Model;

namespace Loom.Core.Validation;

/// <summary>
/// A Service as the API server validates it (ValidateService): a DNS-1035 name, type ClusterIP, NodePort or
/// LoadBalancer, ports with IANA service names (required when there are several, unique), numbers 1-65535 unique per
/// protocol, TCP or UDP, node ports only off ClusterIP and unique per protocol, an IPv4 ClusterIP, external IPs that are
/// not special addresses, traffic policies where they apply, valid selector labels, and ClientIP affinity of 1 to
/// 86400 seconds. Loom programs these values into every node's firewall, so nothing else may reach the store. The node
/// port range (30000-32767) is the allocator's check, as upstream.
/// </summary>
public static class ServiceValidation
{
    /// <summary>Kubernetes' MaxClientIPServiceAffinitySeconds (one day).</summary>
    public const int MaxAffinityTimeoutSeconds = 86400;

    public const string NodePortOnClusterIp = "may not be used when `type` is 'ClusterIP'";

    /// <summary>The supported values of spec.type, as the API server lists them (sorted).</summary>
    public const string SupportedTypes = "supported values: \"ClusterIP\", \"LoadBalancer\", \"NodePort\"";

    /// <summary>Upstream's words for an externalTrafficPolicy on a Service only the cluster reaches.</summary>
    public const string ExternalPolicyOnlyExternal = "may only be set for externally-accessible services";

    public const string SupportedPolicies = "supported values: \"Cluster\", \"Local\"";

    public static IReadOnlyList<FieldError> Validate(Service service)
    {
        ArgumentNullException.ThrowIfNull(service);
        var errors = new List<FieldError>();
        ObjectValidation.Namespace(errors, service.Namespace);
        Name(errors, service.Name);
        ClusterIp(errors, service.ClusterIp);
        Type(errors, service.Type);
        Ports(errors, service.Ports);
        NodePorts(errors, service.Type, service.Ports);
        ExternalIps(errors, service.ExternalIps);
        TrafficPolicies(errors, service);
        HealthCheckNodePort(errors, service.Type, service.ExternalTrafficPolicy, service.HealthCheckNodePort);
        ObjectValidation.Labels(errors, service.Selector, "spec.selector");
        Affinity(errors, service.SessionAffinity, service.SessionAffinityTimeoutSeconds);
        return errors;
    }

    /// <summary>
    /// Upstream's ExternallyAccessible: a node port or load balancer, or a ClusterIP Service with external IPs; only these
    /// take an externalTrafficPolicy.
    /// </summary>
    public static bool IsExternallyAccessible(ServiceType type, int externalIpCount) =>
        type is ServiceType.NodePort or ServiceType.LoadBalancer || externalIpCount > 0;

    /// <summary>Upstream's NeedsHealthCheck: a LoadBalancer with externalTrafficPolicy Local gets a health-check node port.</summary>
    public static bool NeedsHealthCheck(ServiceType type, TrafficPolicy externalTrafficPolicy) =>
        type == ServiceType.LoadBalancer && externalTrafficPolicy == TrafficPolicy.Local;

    public static void Type(List<FieldError> errors, ServiceType type, string field = "spec.type")
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (!Enum.IsDefined(type))
        {
            errors.Add(FieldError.NotSupported(field, type.ToString(), SupportedTypes));
        }
    }

    /// <summary>
    /// Node ports: forbidden on a ClusterIP Service, else 1-65535 (the range is the allocator's), and one number at most
    /// once per protocol (TCP and UDP may share one, as for DNS).
    /// </summary>
    public static void NodePorts(List<FieldError> errors, ServiceType type, IReadOnlyList<ServicePort>? ports, string field = "spec.ports")
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (ports is null)
        {
            return;
        }

        var seen = new HashSet<(int, Protocol)>();
        for (var i = 0; i < ports.Count; i++)
        {
            var p = ports[i];
            if (p.NodePort == 0)
            {
                continue;
            }

            var path = string.Create(CultureInfo.InvariantCulture, $"{field}[{i}].nodePort");
            if (type == ServiceType.ClusterIP)
            {
                errors.Add(FieldError.Forbidden(path, NodePortOnClusterIp));
                continue;
            }

            PortNumber(errors, p.NodePort, path);
            if (!seen.Add((p.NodePort, p.Protocol)))
            {
                errors.Add(new FieldError(path, FieldErrorType.Duplicate, p.NodePort.ToString(CultureInfo.InvariantCulture), ""));
            }
        }
    }

    /// <summary>External IPs: IPv4 (Loom's Services are IPv4) and, as upstream's ValidateNonSpecialIP, not special addresses.</summary>
    public static void ExternalIps(List<FieldError> errors, IReadOnlyList<IPAddress>? ips, string field = "spec.externalIPs")
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (ips is null)
        {
            return;
        }

        for (var i = 0; i < ips.Count; i++)
        {
            var path = string.Create(CultureInfo.InvariantCulture, $"{field}[{i}]");
            if (ips[i] is not { } ip)
            {
                errors.Add(FieldError.Required(path));
                continue;
            }

            var text = ip.ToString();
            if (ip.AddressFamily != AddressFamily.InterNetwork)
            {
                errors.Add(FieldError.Invalid(path, text, "must be an IPv4 address: Loom's Services are IPv4"));
                continue;
            }

            var b = ip.GetAddressBytes();
            if (ip.Equals(IPAddress.Any))
            {
                errors.Add(FieldError.Invalid(path, text, $"may not be unspecified ({text})"));
            }
            else if (b[0] == 127)
            {
                errors.Add(FieldError.Invalid(path, text, "may not be in the loopback range (127.0.0.0/8, ::1/128)"));
            }
            else if (b[0] == 169 && b[1] == 254)
            {
                errors.Add(FieldError.Invalid(path, text, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"));
            }
            else if (b[0] == 224 && b[1] == 0 && b[2] == 0)
            {
                errors.Add(FieldError.Invalid(path, text, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"));
            }
            // Loom's: a multicast or broadcast destination cannot be a connection's; upstream lets these through.
            else if (b[0] >= 224)
            {
                errors.Add(FieldError.Invalid(path, text, "may not be a multicast or reserved address (224.0.0.0/3): Loom cannot serve it"));
            }
        }
    }

    /// <summary>
    /// externalTrafficPolicy Cluster or Local, Local only on an externally accessible Service (Cluster is the model's
    /// default, so it stands for "not set"); internalTrafficPolicy Cluster or Local.
    /// </summary>
    public static void TrafficPolicies(List<FieldError> errors, Service service)
    {
        ArgumentNullException.ThrowIfNull(errors);
        ArgumentNullException.ThrowIfNull(service);
        if (!Enum.IsDefined(service.ExternalTrafficPolicy))
        {
            errors.Add(FieldError.NotSupported("spec.externalTrafficPolicy", service.ExternalTrafficPolicy.ToString(), SupportedPolicies));
        }
        else if (service.ExternalTrafficPolicy != TrafficPolicy.Cluster && !IsExternallyAccessible(service.Type, service.ExternalIps.Count))
        {
            errors.Add(FieldError.Invalid("spec.externalTrafficPolicy", service.ExternalTrafficPolicy.ToString(), ExternalPolicyOnlyExternal));
        }

        if (!Enum.IsDefined(service.InternalTrafficPolicy))
        {
            errors.Add(FieldError.NotSupported("spec.internalTrafficPolicy", service.InternalTrafficPolicy.ToString(), SupportedPolicies));
        }
    }

    /// <summary>
    /// healthCheckNodePort: only on a LoadBalancer with externalTrafficPolicy Local, 1-65535 there. 0 there is not an
    /// error (upstream requires one after allocation): a manifest leaves it to the allocator, and a stored Service
    /// without one still serves its ports, only with no health check.
    /// </summary>
    public static void HealthCheckNodePort(List<FieldError> errors, ServiceType type, TrafficPolicy externalTrafficPolicy, int port,
        string field = "spec.healthCheckNodePort")
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (!NeedsHealthCheck(type, externalTrafficPolicy))
        {
            if (port != 0)
            {
                errors.Add(FieldError.Invalid(field, port, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"));
            }
        }
        else if (port != 0)
        {
            PortNumber(errors, port, field);
        }
    }

    /// <summary>Service names are DNS-1035 labels: they become DNS names, so they must start with a letter.</summary>
    public static void Name(List<FieldError> errors, string? name, string field = "metadata.name")
    {
        ArgumentNullException.ThrowIfNull(errors);
        ObjectValidation.Name(errors, name, field, NameValidation.IsDns1035Label);
    }

    public static void ClusterIp(List<FieldError> errors, IPAddress? ip, string field = "spec.clusterIP")
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (ip is null)
        {
            errors.Add(FieldError.Required(field));
        }
        else if (ip.AddressFamily != AddressFamily.InterNetwork || ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.Broadcast))
        {
            errors.Add(FieldError.Invalid(field, ip.ToString(), "must be a valid IPv4 address"));
        }
    }

    public static void Ports(List<FieldError> errors, IReadOnlyList<ServicePort>? ports, string field = "spec.ports")
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (ports is null || ports.Count == 0)
        {
            errors.Add(FieldError.Required(field));
            return;
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        var numbers = new HashSet<(int, Protocol)>();
        for (var i = 0; i < ports.Count; i++)
        {
            var path = string.Create(CultureInfo.InvariantCulture, $"{field}[{i}]");
            var p = ports[i];
            PortName(errors, p.Name, path + ".name", required: ports.Count > 1);
            if (!string.IsNullOrEmpty(p.Name) && !names.Add(p.Name))
            {
                errors.Add(FieldError.Duplicate(path + ".name", p.Name));
            }

            PortNumber(errors, p.Port, path + ".port");
            if (!Enum.IsDefined(p.Protocol))
            {
                errors.Add(FieldError.NotSupported(path + ".protocol", p.Protocol.ToString(), "supported values: \"TCP\", \"UDP\""));
            }

            // 0 is Loom's "same as port" (the API server defaults an absent targetPort to port).
            if (p.TargetPort != 0)
            {
                PortNumber(errors, p.TargetPort, path + ".targetPort");
            }

            if (!numbers.Add((p.Port, p.Protocol)))
            {
                errors.Add(FieldError.Duplicate(path, string.Create(CultureInfo.InvariantCulture, $"{p.Port}/{ProtocolText(p.Protocol)}")));
            }
        }
    }

    public static void PortName(List<FieldError> errors, string? name, string field, bool required)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (string.IsNullOrEmpty(name))
        {
            if (required)
            {
                errors.Add(FieldError.Required(field, "a Service with several ports must name each"));
            }

            return;
        }

        foreach (var m in NameValidation.IsValidPortName(name))
        {
            errors.Add(FieldError.Invalid(field, name, m));
        }
    }

    public static void PortNumber(List<FieldError> errors, long port, string field)
    {
        ArgumentNullException.ThrowIfNull(errors);
        foreach (var m in NameValidation.IsValidPortNum(port))
        {
            errors.Add(FieldError.Invalid(field, port, m));
        }
    }

    /// <summary>"TCP" or "UDP" (absent means TCP); SCTP, valid in Kubernetes, is refused by name since Loom cannot program it.</summary>
    public static Protocol? Protocol(List<FieldError> errors, string? text, string field)
    {
        ArgumentNullException.ThrowIfNull(errors);
        switch (text)
        {
            case null or "" or "TCP":
                return Model.Protocol.Tcp;
            case "UDP":
                return Model.Protocol.Udp;
            case "SCTP":
                errors.Add(FieldError.NotSupported(field, text, "SCTP is not supported by Loom; supported values: \"TCP\", \"UDP\""));
                return null;
            default:
                errors.Add(FieldError.NotSupported(field, text, "supported values: \"TCP\", \"UDP\""));
                return null;
        }
    }

    public static void Affinity(List<FieldError> errors, SessionAffinity affinity, int timeoutSeconds,
        string field = "spec.sessionAffinity", string timeoutField = "spec.sessionAffinityConfig.clientIP.timeoutSeconds")
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (!Enum.IsDefined(affinity))
        {
            errors.Add(FieldError.NotSupported(field, affinity.ToString(), "supported values: \"ClientIP\", \"None\""));
        }

        if (timeoutSeconds is < 1 or > MaxAffinityTimeoutSeconds)
        {
            errors.Add(FieldError.Invalid(timeoutField, timeoutSeconds, $"must be greater than 0 and less than or equal to {MaxAffinityTimeoutSeconds}"));
        }
    }

    private static string ProtocolText(Protocol p) => p switch
    {
        Model.Protocol.Tcp => "TCP",
        Model.Protocol.Udp => "UDP",
        _ => p.ToString(),
    };
}
