using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using k8s;
using k8s.Authentication;

namespace Loom.Kubernetes;

/// <summary>
/// An HTTP connection to the API server, set up by KubernetesClient from a kubeconfig or the service account (TLS,
/// client certificates, credentials); the calls themselves are plain requests, so list, watch and patch share one path
/// and every request is authenticated the same way.
/// </summary>
internal sealed class ApiConnection : IDisposable
{
    private readonly k8s.Kubernetes _kube;
    private readonly HttpClient _http;
    private readonly ServiceClientCredentials? _credentials;

    private ApiConnection(KubernetesClientConfiguration config, TimeSpan requestTimeout)
    {
        config.HttpClientTimeout = Timeout.InfiniteTimeSpan; // watches stay open: deadlines are per call
        _kube = new k8s.Kubernetes(config);
        _http = _kube.HttpClient;
        _credentials = _kube.Credentials;
        Server = _kube.BaseUri;
        RequestTimeout = requestTimeout;
    }

    public Uri Server { get; }

    public TimeSpan RequestTimeout { get; }

    /// <summary>Connects as <paramref name="options"/> says: its kubeconfig, else the pod's service account.</summary>
    public static ApiConnection Open(KubernetesOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        try
        {
            return new ApiConnection(options.Kubeconfig is { } path ? FromKubeconfig(path) : InCluster(options), options.RequestTimeout);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or k8s.Exceptions.KubeConfigException or KubernetesException
                                      or FormatException or ArgumentException or InvalidOperationException
                                      or System.Security.Cryptography.CryptographicException or YamlDotNet.Core.YamlException)
        {
            throw new KubernetesConfigException(options.Kubeconfig is { } p ? $"kubeconfig {p}: {e.Message}" : $"in-cluster config: {e.Message}", e);
        }
    }

    private static KubernetesClientConfiguration FromKubeconfig(string path)
    {
        if (!File.Exists(path))
        {
            throw new KubernetesConfigException($"kubeconfig {path} does not exist");
        }

        return KubernetesClientConfiguration.BuildConfigFromConfigFile(path);
    }

    /// <summary>client-go's rest.InClusterConfig, from a directory that tests can choose.</summary>
    internal static KubernetesClientConfiguration InCluster(KubernetesOptions options)
    {
        var host = options.Environment("KUBERNETES_SERVICE_HOST");
        var port = options.Environment("KUBERNETES_SERVICE_PORT");
        if (string.IsNullOrEmpty(host) || string.IsNullOrEmpty(port))
        {
            throw new KubernetesConfigException(
                "not in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset; set \"kubernetes\": {\"kubeconfig\": PATH} in the agent config");
        }

        var token = Path.Combine(options.ServiceAccountDir, "token");
        if (!File.Exists(token))
        {
            throw new KubernetesConfigException($"in-cluster config: no service account token at {token} (automountServiceAccountToken false?)");
        }

        var config = new KubernetesClientConfiguration
        {
            Host = new UriBuilder(Uri.UriSchemeHttps, host, int.Parse(port, System.Globalization.CultureInfo.InvariantCulture)).Uri.ToString(),
            TokenProvider = new TokenFile(token),
        };
        var ca = Path.Combine(options.ServiceAccountDir, "ca.crt");
        if (File.Exists(ca))
        {
            var certs = new System.Security.Cryptography.X509Certificates.X509Certificate2Collection();
            certs.ImportFromPemFile(ca);
            config.SslCaCerts = certs;
        }

        var ns = Path.Combine(options.ServiceAccountDir, "namespace");
        if (File.Exists(ns))
        {
            config.Namespace = File.ReadAllText(ns).Trim();
        }

        return config;
    }

    /// <summary>GET of one object or a list, decoded with the API models' source-generated contract.</summary>
    public async Task<T> GetAsync<T>(string path, JsonTypeInfo<T> type, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(RequestTimeout);
        using var response = await SendAsync(HttpMethod.Get, path, null, null, HttpCompletionOption.ResponseContentRead, deadline.Token).ConfigureAwait(false);
        var body = await response.Content.ReadAsByteArrayAsync(deadline.Token).ConfigureAwait(false);
        try
        {
            return JsonSerializer.Deserialize(body, type) ?? throw new ApiException(HttpMethod.Get, path, response.StatusCode, "empty body");
        }
        catch (JsonException e)
        {
            throw new ApiException(HttpMethod.Get, path, response.StatusCode, $"malformed JSON: {e.Message}", e);
        }
    }

    /// <summary>A request with a JSON body (POST, PUT, PATCH of the given content type); the answer's body is discarded.</summary>
    public async Task SendJsonAsync(HttpMethod method, string path, string json, string contentType, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(RequestTimeout);
        using var content = new StringContent(json, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        using var response = await SendAsync(method, path, null, content, HttpCompletionOption.ResponseContentRead, deadline.Token).ConfigureAwait(false);
    }

    /// <summary>Opens a watch: the caller reads (and disposes) the streamed response.</summary>
    public Task<HttpResponseMessage> OpenWatchAsync(string path, string query, CancellationToken ct) =>
        SendAsync(HttpMethod.Get, path, query, null, HttpCompletionOption.ResponseHeadersRead, ct);

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? query, HttpContent? content,
        HttpCompletionOption completion, CancellationToken ct)
    {
        var uri = new UriBuilder(Server) { Path = Server.AbsolutePath.TrimEnd('/') + path, Query = query ?? "" }.Uri;
        using var request = new HttpRequestMessage(method, uri) { Content = content };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        if (_credentials is not null)
        {
            await _credentials.ProcessHttpRequestAsync(request, ct).ConfigureAwait(false);
        }

        var response = await _http.SendAsync(request, completion, ct).ConfigureAwait(false);
        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            throw new ApiException(method, path + (query is null ? "" : "?" + query), response.StatusCode, StatusMessage(body));
        }
    }

    /// <summary>The message of a metav1.Status body, else the body's start.</summary>
    private static string StatusMessage(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("message", out var m) && m.GetString() is { } text)
            {
                return text;
            }
        }
        catch (JsonException)
        {
        }

        return body.Length > 200 ? body[..200] : body;
    }

    public void Dispose()
    {
        _kube.Dispose(); // and its HttpClient
    }

    /// <summary>The projected service account token: re-read now and then, as the kubelet rotates it (hourly).</summary>
    private sealed class TokenFile(string path) : ITokenProvider
    {
        private string? _token;
        private DateTimeOffset _read;

        public async Task<AuthenticationHeaderValue> GetAuthenticationHeaderAsync(CancellationToken cancellationToken)
        {
            if (_token is null || DateTimeOffset.UtcNow - _read > TimeSpan.FromMinutes(1))
            {
                _token = (await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false)).Trim();
                _read = DateTimeOffset.UtcNow;
            }

            return new AuthenticationHeaderValue("Bearer", _token);
        }
    }
}

/// <summary>The API server answered an error status; the message names the RBAC verb missing on 401/403.</summary>
public sealed class ApiException : Exception
{
    public ApiException()
    {
    }

    public ApiException(string message)
        : base(message)
    {
    }

    public ApiException(string message, Exception inner)
        : base(message, inner)
    {
    }

    internal ApiException(HttpMethod method, string pathAndQuery, HttpStatusCode status, string detail, Exception? inner = null)
        : base(Describe(method, pathAndQuery, status, detail), inner)
    {
        Status = status;
    }

    public HttpStatusCode Status { get; }

    private static string Describe(HttpMethod method, string pathAndQuery, HttpStatusCode status, string detail)
    {
        var text = $"{method} {pathAndQuery}: {(int)status} {status}: {detail}";
        var q = pathAndQuery.IndexOf('?', StringComparison.Ordinal);
        var rbac = KubernetesAccess.Classify(method.Method, q < 0 ? pathAndQuery : pathAndQuery[..q], q < 0 ? "" : pathAndQuery[(q + 1)..]);
        return status switch
        {
            HttpStatusCode.Forbidden when rbac is var (group, resource, verb) =>
                $"{text} (the ClusterRole loom-agent must grant {verb} on {resource}{(group.Length == 0 ? "" : "." + group)})",
            HttpStatusCode.Unauthorized => $"{text} (the credentials were refused: the service account token or kubeconfig user)",
            _ => text,
        };
    }
}

/// <summary>The kubeconfig or the in-cluster service account cannot be used.</summary>
public sealed class KubernetesConfigException : Exception
{
    public KubernetesConfigException()
    {
    }

    public KubernetesConfigException(string message)
        : base(message)
    {
    }

    public KubernetesConfigException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
