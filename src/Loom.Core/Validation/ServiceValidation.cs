using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Loom.Core.Model;

namespace Loom.Core.Validation;

/// <summary>
/// A Service as the API server validates it (ValidateService), for the ClusterIP Services Loom runs: a DNS-1035 name,
/// ports with IANA service names (required when there are several, unique), numbers 1-65535 unique per protocol,
/// TCP or UDP, an IPv4 ClusterIP, valid selector labels, and ClientIP affinity of 1 to 86400 seconds. Loom programs
/// these values into every node's firewall, so nothing else may reach the store.
/// </summary>
public static class ServiceValidation
{
    /// <summary>Kubernetes' MaxClientIPServiceAffinitySeconds (one day).</summary>
    public const int MaxAffinityTimeoutSeconds = 86400;

    public static IReadOnlyList<FieldError> Validate(Service service)
    {
        ArgumentNullException.ThrowIfNull(service);
        var errors = new List<FieldError>();
        ObjectValidation.Namespace(errors, service.Namespace);
        Name(errors, service.Name);
        ClusterIp(errors, service.ClusterIp);
        Ports(errors, service.Ports);
        ObjectValidation.Labels(errors, service.Selector, "spec.selector");
        Affinity(errors, service.SessionAffinity, service.SessionAffinityTimeoutSeconds);
        return errors;
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
