using System.Net;
using System.Text;

namespace Loom.Agent;

/// <summary>
/// <c>/healthz</c> (liveness: the agent runs) and <c>/readyz</c> (readiness: the node's network is programmed) beside
/// <c>/metrics</c> on the metrics address, for a DaemonSet's probes: 200 "ok" or 503 with the reason.
/// </summary>
internal sealed class HealthEndpoints : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Func<bool> _live;
    private readonly Func<bool> _ready;

    private HealthEndpoints(string host, int port, Func<bool> live, Func<bool> ready)
    {
        _live = live;
        _ready = ready;
        // Prefixes of their own on the metrics port: the managed HttpListener shares the port with prometheus-net's.
        _listener.Prefixes.Add($"http://{host}:{port}/healthz/");
        _listener.Prefixes.Add($"http://{host}:{port}/readyz/");
        _listener.Start();
        _ = ServeAsync();
    }

    /// <summary>Starts the endpoints on <paramref name="address"/> (as <see cref="AgentMetrics.Start"/> reads it); null without one.</summary>
    public static HealthEndpoints? Start(string? address, Func<bool> live, Func<bool> ready)
    {
        if (string.IsNullOrEmpty(address))
        {
            return null;
        }

        var colon = address.LastIndexOf(':');
        var host = colon > 0 ? address[..colon] : "+";
        var port = int.Parse(address[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        return new HealthEndpoints(host is "0.0.0.0" or "*" ? "+" : host, port, live, ready);
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext ctx;
            try
            {
                ctx = await _listener.GetContextAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            var path = ctx.Request.Url?.AbsolutePath.TrimEnd('/') ?? "";
            var (ok, why) = path == "/readyz" ? (_ready(), "the node's network is not programmed yet") : (_live(), "the agent's loops are not running");
            var body = Encoding.UTF8.GetBytes(ok ? "ok\n" : why + "\n");
            ctx.Response.StatusCode = ok ? 200 : 503;
            ctx.Response.ContentType = "text/plain";
            try
            {
                await ctx.Response.OutputStream.WriteAsync(body).ConfigureAwait(false);
                ctx.Response.Close();
            }
            catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException)
            {
                // The prober went away.
            }
        }
    }

    public void Dispose() => _listener.Close();
}
