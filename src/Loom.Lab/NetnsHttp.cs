using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Loom.Linux;

namespace Loom.Lab;

/// <summary>
/// HTTP from the lab (which stays in the root namespace) to a server inside a lab namespace: every connection's
/// socket is created on a thread that entered the namespace, so it belongs to it, then used from any thread.
/// Used for etcd's /health while it starts; nothing here can reach beyond the lab.
/// </summary>
internal sealed class NetnsHttp : IDisposable
{
    private readonly NetNsHandle _ns;
    private readonly HttpClient _http;

    /// <param name="tls">For https URLs: client certificate and trusted CA (etcd with --client-cert-auth).</param>
    public NetnsHttp(string netns, SslClientAuthenticationOptions? tls = null)
    {
        _ns = NetNs.Open(netns);
        var handler = NetNsHttpHandler.Create(_ns);
        if (tls is not null)
        {
            handler.SslOptions = tls;
        }

        _http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(5) };
    }

    public async Task<bool> HealthyAsync(Uri endpoint, CancellationToken cancellationToken)
    {
        try
        {
            var body = await _http.GetStringAsync(new Uri(endpoint, "/health"), cancellationToken).ConfigureAwait(false);
            return JsonNode.Parse(body)?["health"]?.GetValue<string>() == "true";
        }
        catch (HttpRequestException)
        {
            return false;
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    public void Dispose()
    {
        _http.Dispose();
        _ns.Dispose();
    }
}
