namespace Loom.Kubernetes;

/// <summary>
/// Where the API server is and who the agent is there: a kubeconfig file, or (<see cref="Kubeconfig"/> null) the
/// pod's service account, as client-go's in-cluster config: KUBERNETES_SERVICE_HOST/PORT and the token and CA files.
/// </summary>
public sealed record KubernetesOptions
{
    public const string DefaultServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

    public string? Kubeconfig { get; init; }

    /// <summary>The mounted service account (token, ca.crt, namespace); tests point it at a temporary directory.</summary>
    public string ServiceAccountDir { get; init; } = DefaultServiceAccountDir;

    /// <summary>Environment lookup (KUBERNETES_SERVICE_HOST/PORT); tests replace it.</summary>
    public Func<string, string?> Environment { get; init; } = System.Environment.GetEnvironmentVariable;

    /// <summary>First delay after a failed list or watch; doubles (with jitter) per consecutive failure up to <see cref="BackoffCap"/>.</summary>
    public TimeSpan BackoffFirst { get; init; } = TimeSpan.FromMilliseconds(500);

    public TimeSpan BackoffCap { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long the API server keeps a watch open before the informer re-watches (client-go picks 5-10 min).</summary>
    public int WatchTimeoutSeconds { get; init; } = 300;

    /// <summary>How often the node-local store's change history is trimmed (to what is older than the previous trim).</summary>
    public TimeSpan CompactInterval { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Deadline of a list, get or patch.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
