using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Loom.Core.Controllers;
using Loom.Core.Model;
using Loom.Datapath.Services;
using Loom.Linux;

namespace Loom.Agent.Services;

/// <summary>The body kube-proxy's health-check node port answers with (pkg/proxy/healthcheck/service_health.go).</summary>
internal sealed record HealthCheckBody(HealthCheckService Service, int LocalEndpoints, bool ServiceProxyHealthy);

internal sealed record HealthCheckService(string Namespace, string Name);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(HealthCheckBody))]
internal sealed partial class HealthCheckJsonContext : JsonSerializerContext;

/// <summary>
/// kube-proxy's health-check node ports: for each Service with a <c>healthCheckNodePort</c> (LoadBalancer with
/// externalTrafficPolicy Local) the node listens on 0.0.0.0 at that port and answers any request with the Service's
/// local endpoint count: 200 when it has some, 503 when not, so a cloud load balancer only sends to nodes that serve it.
/// The listeners follow what the service backend wrote (<see cref="Apply"/> per port, <see cref="Set"/> on a full
/// pass). A port that cannot be bound (in use) is logged and makes this controller unhealthy in <c>loom status</c>; the
/// Services are programmed all the same, and the bind is tried again after the next write.
/// </summary>
internal sealed class HealthCheckServer(AgentLoops loops, NetNsHandle? netns = null) : IController, IDisposable
{
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(5);
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Dictionary<string, ServicePortState> _ports = new(StringComparer.Ordinal); // those with a health-check port
    private readonly Dictionary<int, Listener> _listeners = [];
    private readonly Dictionary<int, string> _failures = [];
    private long _reconciles;
    private bool _disposed;

    public string Name => "health checks";

    /// <summary>The ports listened on now.</summary>
    public IReadOnlyList<int> Ports
    {
        get
        {
            lock (_lock)
            {
                return [.. _listeners.Keys.Order()];
            }
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        // The listeners run on their own; this only holds the controller until the agent stops.
        await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
    }

    public ControllerStatus Describe()
    {
        lock (_lock)
        {
            var error = _failures.Count == 0 ? null : string.Join("; ", _failures.OrderBy(f => f.Key).Select(f => f.Value));
            return new ControllerStatus(Name, error is null, $"{_listeners.Count} health-check node port(s) listening", Interlocked.Read(ref _reconciles), error);
        }
    }

    /// <summary>One port's state as written (null: removed).</summary>
    public void Apply(string key, ServicePortState? state)
    {
        lock (_lock)
        {
            var had = _ports.Remove(key);
            if (state is { HealthCheckNodePort: not 0 })
            {
                _ports[key] = state;
            }
            else if (!had)
            {
                return; // neither before nor now: nothing to listen to
            }

            Reconcile();
        }
    }

    /// <summary>Every port as written by a full pass.</summary>
    public void Set(IReadOnlyDictionary<string, ServicePortState> all)
    {
        lock (_lock)
        {
            _ports.Clear();
            foreach (var (k, v) in all)
            {
                if (v.HealthCheckNodePort != 0)
                {
                    _ports[k] = v;
                }
            }

            Reconcile();
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        lock (_lock)
        {
            _disposed = true;
            foreach (var l in _listeners.Values)
            {
                l.Dispose();
            }

            _listeners.Clear();
        }

        _stop.Dispose();
    }

    /// <summary>The answer for one Service: 200 with local endpoints, else 503; the body and headers as kube-proxy's.</summary>
    internal static byte[] Response(HealthCheckService service, int localEndpoints, bool head)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(new HealthCheckBody(service, localEndpoints, true), HealthCheckJsonContext.Default.HealthCheckBody);
        var status = localEndpoints > 0 ? "200 OK" : "503 Service Unavailable";
        var header = string.Create(CultureInfo.InvariantCulture,
            $"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nX-Load-Balancing-Endpoint-Weight: {localEndpoints}\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n");
        return [.. Encoding.ASCII.GetBytes(header), .. head ? [] : body];
    }

    // Under _lock. Each port's Service and its local endpoints (distinct addresses over its ports, as kube-proxy counts).
    private void Reconcile()
    {
        if (_disposed)
        {
            return; // a last write racing the agent's stop opens nothing
        }

        Interlocked.Increment(ref _reconciles);
        var wanted = _ports.OrderBy(p => p.Key, StringComparer.Ordinal)
            .GroupBy(p => p.Value.HealthCheckNodePort)
            .ToDictionary(g => g.Key, g =>
            {
                var first = g.First().Value.Name;
                var local = g.Where(p => p.Value.Name.Namespace == first.Namespace && p.Value.Name.Name == first.Name)
                    .SelectMany(p => p.Value.LocalBackends).Select(b => b.Address).Distinct().Count();
                return (Service: new HealthCheckService(first.Namespace, first.Name), Local: local);
            });
        foreach (var port in _listeners.Keys.Where(p => !wanted.ContainsKey(p)).ToList())
        {
            _listeners.Remove(port, out var gone);
            gone!.Dispose();
            loops.Log($"health check: stopped listening on port {port}");
        }

        foreach (var port in _failures.Keys.Where(p => !wanted.ContainsKey(p)).ToList())
        {
            _failures.Remove(port);
        }

        foreach (var (port, target) in wanted)
        {
            if (!_listeners.TryGetValue(port, out var listener))
            {
                listener = Listen(port, target.Service);
                if (listener is null)
                {
                    continue;
                }

                _listeners[port] = listener;
            }

            listener.Target = target;
        }
    }

    private Listener? Listen(int port, HealthCheckService service)
    {
        Socket? socket = null;
        try
        {
            socket = netns is null ? Bind(port) : NetNs.Run(netns, () => Bind(port));
            var listener = new Listener(socket, _stop.Token);
            _failures.Remove(port);
            loops.Log($"health check: listening on 0.0.0.0:{port} for {service.Namespace}/{service.Name}");
            return listener;
        }
        catch (SocketException e)
        {
            socket?.Dispose();
            var text = $"health-check node port {port} of {service.Namespace}/{service.Name}: cannot listen on 0.0.0.0:{port}: {e.Message}";
            if (_failures.GetValueOrDefault(port) != text)
            {
                loops.Log(text + "; tried again after the next write");
                AgentMetrics.LoopFailures.WithLabels("health check", e.SocketErrorCode.ToString()).Inc();
            }

            _failures[port] = text;
            return null;
        }
    }

    private static Socket Bind(int port)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            s.Bind(new IPEndPoint(IPAddress.Any, port));
            s.Listen(64);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>One listening port: accepts until disposed and answers each connection once, then closes it.</summary>
    private sealed class Listener : IDisposable
    {
        private readonly Socket _socket;
        private readonly CancellationTokenSource _stop;
        private volatile Box? _target; // swapped whole by Reconcile, read by the answering tasks

        public Listener(Socket socket, CancellationToken agentStop)
        {
            _socket = socket;
            _stop = CancellationTokenSource.CreateLinkedTokenSource(agentStop);
            _ = Task.Run(AcceptAsync, CancellationToken.None);
        }

        public (HealthCheckService Service, int Local) Target
        {
            set => _target = new Box(value);
        }

        public void Dispose()
        {
            _stop.Cancel();
            _socket.Dispose();
            _stop.Dispose();
        }

        private async Task AcceptAsync()
        {
            var token = _stop.Token;
            while (!token.IsCancellationRequested)
            {
                Socket client;
                try
                {
                    client = await _socket.AcceptAsync(token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
                {
                    return;
                }
                catch (SocketException)
                {
                    continue; // the client went before it was accepted
                }

                _ = Task.Run(() => AnswerAsync(client, token), CancellationToken.None); // it disposes the client, stopping or not
            }
        }

        private async Task AnswerAsync(Socket client, CancellationToken token)
        {
            using (client)
            {
                try
                {
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(token);
                    timeout.CancelAfter(ReadTimeout);
                    var head = await ReadRequestLineAsync(client, timeout.Token).ConfigureAwait(false);
                    var target = _target;
                    if (head is null || target is null)
                    {
                        return;
                    }

                    var response = Response(target.Value.Service, target.Value.Local, head.StartsWith("HEAD ", StringComparison.Ordinal));
                    await client.SendAsync(response, SocketFlags.None, timeout.Token).ConfigureAwait(false);
                    client.Shutdown(SocketShutdown.Send);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    // A client that sends nothing, or goes away, gets nothing.
                }
            }
        }

        /// <summary>Reads the request until its blank line (at most 8 KiB); returns its first line, or null if it never came.</summary>
        private static async Task<string?> ReadRequestLineAsync(Socket client, CancellationToken token)
        {
            var buf = new byte[8192];
            var n = 0;
            while (n < buf.Length)
            {
                var r = await client.ReceiveAsync(buf.AsMemory(n), SocketFlags.None, token).ConfigureAwait(false);
                if (r == 0)
                {
                    break;
                }

                n += r;
                if (buf.AsSpan(0, n).IndexOf("\r\n\r\n"u8) >= 0)
                {
                    break;
                }
            }

            var text = Encoding.ASCII.GetString(buf, 0, n);
            var eol = text.IndexOf("\r\n", StringComparison.Ordinal);
            return eol > 0 ? text[..eol] : null;
        }

        private sealed record Box((HealthCheckService Service, int Local) Value);
    }
}
