using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json;
using Loom.Agent.Services;
using Loom.Core.Model;
using Loom.Core.Reconcile;
using Loom.Core.Store;
using Loom.Datapath.Services;
using Loom.Linux;
using Loom.Testing;

namespace Loom.Agent.Tests;

/// <summary>
/// kube-proxy's health-check node ports, served by the agent inside a test namespace and asked with a real HTTP client:
/// 200 or 503 with kube-proxy's body and headers, listeners following the written Services, a port in use reported.
/// </summary>
public sealed class HealthCheckServerTests : IDisposable
{
    private const int HcPort = 32123;
    private readonly TestNetns _ns = new("hc");
    private readonly LogCapture _log = new();
    private readonly IStore _store = MemoryStore.Create();
    private readonly HttpClient _http;
    private readonly Dictionary<string, ServicePortState> _desired = new(StringComparer.Ordinal);

    public HealthCheckServerTests()
    {
        try
        {
            _ns.Netlink.LinkSetUp(_ns.Netlink.LinkByName("lo")!.Index);
        }
        catch
        {
            _ns.Dispose();
            throw;
        }

        _http = new HttpClient(NetNsHttpHandler.Create(_ns.Handle)) { Timeout = TimeSpan.FromSeconds(5) };
    }

    private static ServicePortState Lb(string port, int healthCheckPort, params BackendAddress[] backends) => new(
        new ServicePortName("shop", "web", port), new Frontend(IPAddress.Parse("10.96.0.80"), Protocol.Tcp, port == "http" ? 80 : 443),
        SessionAffinity.None, 0, backends)
    {
        Type = ServiceType.LoadBalancer, NodePort = port == "http" ? 30080 : 30443, ExternalTrafficPolicy = TrafficPolicy.Local, HealthCheckNodePort = healthCheckPort,
    };

    private static BackendAddress Local(int i, int port = 8080) => new(IPAddress.Parse($"10.244.1.{i}"), port) { IsLocal = true };

    private static BackendAddress Remote(int i) => new(IPAddress.Parse($"10.244.2.{i}"), 8080);

    [Fact]
    public async Task The_port_answers_200_with_local_endpoints_503_without_and_goes_with_the_service()
    {
        using var hc = new HealthCheckServer(new AgentLoops(_store, _log), _ns.Handle);
        using var ops = new ServiceBackendOperations(k => new RecordingServiceBackend(k), ServiceProxyMode.Iptables,
            () => _desired, new AgentLoops(_store, _log), healthChecks: hc);

        // Two ports of one Service share the health check; two local pods (one serving both ports) count as two.
        await Write(ops, ("shop/web:http/TCP", Lb("http", HcPort, Local(5), Local(6), Remote(7))), ("shop/web:https/TCP", Lb("https", HcPort, Local(5, 8443))));
        Assert.Equal([HcPort], hc.Ports);
        var (status, headers, body) = await GetAsync();
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["nosniff"], headers.Get("X-Content-Type-Options"));
        Assert.Equal(["2"], headers.Get("X-Load-Balancing-Endpoint-Weight"));
        Assert.Equal("shop", body.GetProperty("service").GetProperty("namespace").GetString());
        Assert.Equal("web", body.GetProperty("service").GetProperty("name").GetString());
        Assert.Equal(2, body.GetProperty("localEndpoints").GetInt32());
        Assert.True(body.GetProperty("serviceProxyHealthy").GetBoolean());

        // No local endpoint left: 503, so the load balancer skips this node.
        await Write(ops, ("shop/web:http/TCP", Lb("http", HcPort, Remote(7))), ("shop/web:https/TCP", Lb("https", HcPort)));
        (status, headers, body) = await GetAsync();
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Equal(["0"], headers.Get("X-Load-Balancing-Endpoint-Weight"));
        Assert.Equal(0, body.GetProperty("localEndpoints").GetInt32());

        // The Service goes: so does the listener.
        foreach (var key in _desired.Keys.Order(StringComparer.Ordinal).ToList())
        {
            Assert.Equal([HcPort], hc.Ports);
            _desired.Remove(key);
            await ops.DeleteAsync(key, default);
        }

        Assert.Empty(hc.Ports);
        await Assert.ThrowsAsync<HttpRequestException>(GetAsync);
        Assert.Contains($"health check: stopped listening on port {HcPort}", _log.Text, StringComparison.Ordinal);
        Assert.True(hc.Describe().Healthy);
    }

    [Fact]
    public async Task A_port_in_use_is_reported_unhealthy_while_the_others_serve_and_is_bound_once_free()
    {
        using var hc = new HealthCheckServer(new AgentLoops(_store, _log), _ns.Handle);
        var squatter = _ns.Run(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(IPAddress.Any, HcPort));
            s.Listen();
            return s;
        });
        var all = new Dictionary<string, ServicePortState>
        {
            ["shop/web:http/TCP"] = Lb("http", HcPort, Local(5)),
            ["shop/api:http/TCP"] = Lb("http", HcPort + 1, Local(6)) with { Name = new ServicePortName("shop", "api", "http") },
        };
        hc.Set(all);

        var status = hc.Describe();
        Assert.False(status.Healthy);
        Assert.Contains($"health-check node port {HcPort} of shop/web: cannot listen on 0.0.0.0:{HcPort}", status.LastError, StringComparison.Ordinal);
        Assert.Contains($"health-check node port {HcPort} of shop/web", _log.Text, StringComparison.Ordinal);
        Assert.Equal([HcPort + 1], hc.Ports);
        var (code, _, body) = await GetAsync(HcPort + 1);
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Equal("api", body.GetProperty("service").GetProperty("name").GetString());

        squatter.Dispose();
        hc.Set(all);
        Assert.True(hc.Describe().Healthy, hc.Describe().LastError);
        Assert.Equal([HcPort, HcPort + 1], hc.Ports);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync()).Status);
    }

    [Fact]
    public void A_head_request_gets_the_headers_without_the_body()
    {
        var get = System.Text.Encoding.ASCII.GetString(HealthCheckServer.Response(new HealthCheckService("a", "b"), 0, head: false));
        var head = System.Text.Encoding.ASCII.GetString(HealthCheckServer.Response(new HealthCheckService("a", "b"), 0, head: true));
        Assert.StartsWith("HTTP/1.1 503 Service Unavailable\r\n", get, StringComparison.Ordinal);
        Assert.Equal(get[..(get.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)], head);
        Assert.EndsWith("}", get, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        _http.Dispose();
        _store.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _ns.Dispose();
    }

    private async Task Write(ServiceBackendOperations ops, params (string Key, ServicePortState State)[] rows)
    {
        foreach (var (key, state) in rows)
        {
            _desired[key] = state;
        }

        await ops.ApplyBatchAsync([.. rows.Select(r => new RowChange<string, ServicePortState>(r.Key, r.State, false))], default);
    }

    private async Task<(HttpStatusCode Status, HttpResponseHeaders Headers, JsonElement Body)> GetAsync() => await GetAsync(HcPort);

    private async Task<(HttpStatusCode Status, HttpResponseHeaders Headers, JsonElement Body)> GetAsync(int port)
    {
        using var response = await _http.GetAsync(new Uri($"http://127.0.0.1:{port}/healthz"));
        var headers = response.Headers;
        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return (response.StatusCode, headers, JsonDocument.Parse(text).RootElement.Clone());
    }
}

internal static class HeaderExtensions
{
    public static string[] Get(this HttpResponseHeaders headers, string name) => headers.TryGetValues(name, out var v) ? [.. v] : [];
}
