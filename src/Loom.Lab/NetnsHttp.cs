using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Loom.Linux;

namespace Loom.Lab;

/// <summary>
/// HTTP from the lab (which stays in the root namespace) to a server inside a lab namespace: every connection's
/// socket is created on a thread that entered the namespace, so it belongs to it, then used from any thread.
/// Used for etcd's /health and its v3 JSON gateway; nothing here can reach beyond the lab.
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

    /// <summary>etcd v3 gateway put (keys and values are base64 in the JSON API).</summary>
    public async Task EtcdPutAsync(Uri endpoint, string key, string value, CancellationToken cancellationToken)
    {
        var req = new JsonObject { ["key"] = B64(key), ["value"] = B64(value) };
        using var content = new StringContent(req.ToJsonString(), Encoding.UTF8, "application/json");
        using var resp = await _http.PostAsync(new Uri(endpoint, "/v3/kv/put"), content, cancellationToken).ConfigureAwait(false);
        resp.EnsureSuccessStatusCode();
    }

    /// <summary>etcd v3 gateway range over a prefix: (key, value) pairs.</summary>
    public async Task<IReadOnlyList<(string Key, string Value)>> EtcdRangeAsync(Uri endpoint, string prefix, CancellationToken cancellationToken)
    {
        var start = Encoding.UTF8.GetBytes(prefix);
        var end = (byte[])start.Clone();
        end[^1]++;
        var req = new JsonObject { ["key"] = Convert.ToBase64String(start), ["range_end"] = Convert.ToBase64String(end) };
        using var content = new StringContent(req.ToJsonString(), Encoding.UTF8, "application/json");
        using var resp = await _http.PostAsync(new Uri(endpoint, "/v3/kv/range"), content, cancellationToken).ConfigureAwait(false);
        resp.EnsureSuccessStatusCode();
        var body = JsonNode.Parse(await resp.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false));
        var list = new List<(string, string)>();
        if (body?["kvs"] is JsonArray kvs)
        {
            foreach (var kv in kvs)
            {
                list.Add((UnB64(kv?["key"]), UnB64(kv?["value"])));
            }
        }

        return list;
    }

    public void Dispose()
    {
        _http.Dispose();
        _ns.Dispose();
    }

    private static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));

    private static string UnB64(JsonNode? n) => n is null ? "" : Encoding.UTF8.GetString(Convert.FromBase64String(n.GetValue<string>()));
}
