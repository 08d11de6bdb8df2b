using System.Net.Sockets;
using Loom.Core.Model;

namespace Loom.Core.Validation;

/// <summary>
/// Checks shared by every object, as the API server applies them (ValidateObjectMeta, ValidateLabels): namespaces
/// are DNS-1123 labels, Pod and Deployment names DNS-1123 subdomains, label keys qualified names, label values at most
/// 63 characters of a safe alphabet. Each adds its errors to the caller's list, with the field path it was given.
/// </summary>
public static class ObjectValidation
{
    /// <summary>The lab's bound on a Deployment's replicas: each replica is a process and a network namespace on this machine.</summary>
    public const int MaxReplicas = 1000;

    public static void Namespace(List<FieldError> errors, string? ns, string field = "metadata.namespace")
    {
        ArgumentNullException.ThrowIfNull(errors);
        Name(errors, ns, field, NameValidation.IsDns1123Label);
    }

    /// <summary>Pods, Deployments, Nodes: DNS-1123 subdomains.</summary>
    public static void SubdomainName(List<FieldError> errors, string? name, string field = "metadata.name")
    {
        ArgumentNullException.ThrowIfNull(errors);
        Name(errors, name, field, NameValidation.IsDns1123Subdomain);
    }

    public static void Labels(List<FieldError> errors, IReadOnlyDictionary<string, string>? labels, string field)
    {
        ArgumentNullException.ThrowIfNull(errors);
        foreach (var (key, value) in labels ?? new Dictionary<string, string>())
        {
            LabelKey(errors, key, field);
            LabelValue(errors, value, field);
        }
    }

    public static void LabelKey(List<FieldError> errors, string? key, string field)
    {
        ArgumentNullException.ThrowIfNull(errors);
        foreach (var m in NameValidation.IsQualifiedName(key ?? ""))
        {
            errors.Add(FieldError.Invalid(field, key, m));
        }
    }

    public static void LabelValue(List<FieldError> errors, string? value, string field)
    {
        ArgumentNullException.ThrowIfNull(errors);
        foreach (var m in NameValidation.IsValidLabelValue(value ?? ""))
        {
            errors.Add(FieldError.Invalid(field, value, m));
        }
    }

    public static void Replicas(List<FieldError> errors, int replicas, string field = "spec.replicas")
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (replicas is < 0 or > MaxReplicas)
        {
            errors.Add(FieldError.Invalid(field, replicas, $"must be between 0 and {MaxReplicas}, inclusive"));
        }
    }

    /// <summary>An endpoint as the CNI ADD path records it: the pod's namespace, name, node and labels.</summary>
    public static IReadOnlyList<FieldError> Validate(Endpoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var errors = new List<FieldError>();
        Namespace(errors, endpoint.Namespace);
        SubdomainName(errors, endpoint.Name);
        SubdomainName(errors, endpoint.Node, "node");
        Labels(errors, endpoint.Labels, "metadata.labels");
        for (var i = 0; i < (endpoint.IPs?.Count ?? 0); i++)
        {
            if (endpoint.IPs![i] is not { AddressFamily: AddressFamily.InterNetwork or AddressFamily.InterNetworkV6 })
            {
                errors.Add(FieldError.Invalid($"ips[{i}]", endpoint.IPs[i]?.ToString(), "must be an IP address"));
            }
        }

        return errors;
    }

    internal static void Name(List<FieldError> errors, string? name, string field, Func<string, IReadOnlyList<string>> check)
    {
        if (string.IsNullOrEmpty(name))
        {
            errors.Add(FieldError.Required(field, "name or generateName is required"));
            return;
        }

        foreach (var m in check(name))
        {
            errors.Add(FieldError.Invalid(field, name, m));
        }
    }
}
