namespace Loom.Kubernetes;

/// <summary>One RBAC rule: what the agent may do to a resource of an API group ("" is the core group).</summary>
public sealed record AccessRule(string ApiGroup, string Resource, IReadOnlyList<string> Verbs);

/// <summary>
/// The API calls the agent makes, as the ClusterRole <c>loom-agent</c> must grant them: the single list the source is
/// checked against (tests map every request the replay server saw onto it) and deploy/kubernetes is compared with.
/// </summary>
public static class KubernetesAccess
{
    public static IReadOnlyList<AccessRule> Rules { get; } =
    [
        new("", "nodes", ["get", "list", "watch", "patch"]),
        new("", "nodes/status", ["patch"]),
        new("", "pods", ["list", "watch"]),
        new("", "services", ["list", "watch"]),
        new("", "namespaces", ["list", "watch"]),
        new("discovery.k8s.io", "endpointslices", ["list", "watch"]),
        new("networking.k8s.io", "networkpolicies", ["list", "watch"]),
        new("loom.io", "loomnodes", ["get", "list", "watch", "create", "update", "patch"]),
        new("loom.io", "loomnodes/status", ["get", "update", "patch"]),
    ];

    /// <summary>True if <see cref="Rules"/> grant <paramref name="verb"/> on the resource.</summary>
    public static bool Allows(string apiGroup, string resource, string verb) =>
        Rules.Any(r => r.ApiGroup == apiGroup && r.Resource == resource && r.Verbs.Contains(verb));

    /// <summary>
    /// The RBAC view of a request: API group, resource (with its subresource, e.g. "nodes/status") and verb, as the API
    /// server's request-info resolver derives them (a GET of a collection is list, or watch with <c>watch=1</c>).
    /// Null for a path that is not a resource (e.g. /version).
    /// </summary>
    public static (string ApiGroup, string Resource, string Verb)? Classify(string method, string path, string query)
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(path);
        var parts = path.Trim('/').Split('/');
        string group;
        int rest;
        if (parts is ["api", "v1", ..])
        {
            group = "";
            rest = 2;
        }
        else if (parts.Length >= 3 && parts[0] == "apis")
        {
            group = parts[1];
            rest = 3;
        }
        else
        {
            return null;
        }

        var tail = parts[rest..];
        if (tail is ["namespaces", _, _, ..])
        {
            tail = tail[2..]; // a namespaced resource: namespaces/NS/RESOURCE[/NAME[/SUB]]
        }

        if (tail.Length == 0)
        {
            return null;
        }

        var resource = tail.Length >= 3 ? $"{tail[0]}/{tail[2]}" : tail[0];
        var named = tail.Length >= 2;
        var watch = query?.Contains("watch=1", StringComparison.Ordinal) == true || query?.Contains("watch=true", StringComparison.Ordinal) == true;
        var verb = method.ToUpperInvariant() switch
        {
            "GET" when watch => "watch",
            "GET" => named ? "get" : "list",
            "POST" => "create",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => named ? "delete" : "deletecollection",
            var m => m.ToLowerInvariant(),
        };
        return (group, resource, verb);
    }
}
