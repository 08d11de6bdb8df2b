using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Loom.Kubernetes.Tests;

/// <summary>How a scripted watch response ends after its lines.</summary>
public enum WatchEnd
{
    /// <summary>Stays open until the server stops (a live watch).</summary>
    Hang,

    /// <summary>Ends the chunked body properly (the server's timeoutSeconds).</summary>
    Close,

    /// <summary>Resets the connection mid-body (a dropped connection).</summary>
    Drop,
}

/// <summary>A scripted answer: a status and body, or (with <see cref="Lines"/>) a chunked watch stream.</summary>
public sealed record Reply(int Status, string Body = "", IReadOnlyList<string>? Lines = null, WatchEnd End = WatchEnd.Hang)
{
    public static Reply Json(string body) => new(200, body);

    public static Reply Fixture(string name) => new(200, File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", name)));

    public static Reply Watch(WatchEnd end, params string[] lines) => new(200, "", lines, end);

    /// <summary>A watch stream from a fixture file: one event per line, as the API server writes them.</summary>
    public static Reply WatchFixture(string name, WatchEnd end) =>
        Watch(end, [.. File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "Fixtures", name)).Where(l => l.Length > 0)]);

    public static Reply ApiStatus(int code, string reason, string message) =>
        new(code, $$"""{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"{{message}}","reason":"{{reason}}","code":{{code}}}""");
}

public sealed record RecordedRequest(string Method, string Path, string Query, string ContentType, string Body)
{
    public bool IsWatch => Query.Contains("watch=1", StringComparison.Ordinal);

    public string? QueryValue(string name) =>
        Query.Split('&').Select(p => p.Split('=', 2)).Where(p => p[0] == name).Select(p => Uri.UnescapeDataString(p.Length > 1 ? p[1] : "")).FirstOrDefault();
}

/// <summary>
/// A stand-in API server on 127.0.0.1: minimal HTTP/1.1 (keep-alive, chunked watch streams) answering scripted
/// replies per "METHOD PATH" (watches: "WATCH PATH"), in order, the last one repeated; unscripted lists are empty and
/// unscripted watches stay open. Records every request, and all of them across tests in <see cref="Everything"/>.
/// </summary>
public sealed class ReplayServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<string, ConcurrentQueue<Reply>> _script = new(StringComparer.Ordinal);
    private readonly List<Task> _connections = [];
    private readonly Task _accept;

    public ReplayServer()
    {
        _listener.Start();
        Url = new Uri($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}");
        _accept = AcceptAsync();
    }

    public static ConcurrentBag<RecordedRequest> Everything { get; } = [];

    public Uri Url { get; }

    public ConcurrentQueue<RecordedRequest> Requests { get; } = new();

    /// <summary>Scripts "GET /api/v1/pods" (a list), "WATCH /api/v1/pods", "PATCH /api/v1/nodes/n1" and so on.</summary>
    public ReplayServer On(string key, params Reply[] replies)
    {
        var q = _script.GetOrAdd(key, _ => new ConcurrentQueue<Reply>());
        foreach (var r in replies)
        {
            q.Enqueue(r);
        }

        return this;
    }

    /// <summary>Scripts <paramref name="key"/> unless a test already did.</summary>
    public ReplayServer Default(string key, Reply reply)
    {
        _script.TryAdd(key, new ConcurrentQueue<Reply>([reply]));
        return this;
    }

    /// <summary>Replaces the script of <paramref name="key"/>.</summary>
    public ReplayServer Replace(string key, params Reply[] replies)
    {
        _script[key] = new ConcurrentQueue<Reply>(replies);
        return this;
    }

    public IReadOnlyList<RecordedRequest> Seen(string method, string path, bool watch = false) =>
        [.. Requests.Where(r => r.Method == method && r.Path == path && r.IsWatch == watch)];

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            lock (_connections)
            {
                _connections.Add(ServeAsync(client));
            }
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using var _ = client;
        var stream = client.GetStream();
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var requestLine = await ReadLineAsync(stream);
                if (string.IsNullOrEmpty(requestLine))
                {
                    return;
                }

                var parts = requestLine.Split(' ');
                var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
                while (await ReadLineAsync(stream) is { Length: > 0 } h)
                {
                    var colon = h.IndexOf(':', StringComparison.Ordinal);
                    headers[h[..colon].Trim()] = h[(colon + 1)..].Trim();
                }

                var length = headers.TryGetValue("Content-Length", out var l) ? int.Parse(l, System.Globalization.CultureInfo.InvariantCulture) : 0;
                var body = new byte[length];
                await stream.ReadExactlyAsync(body, _stop.Token);
                var target = parts[1];
                var q = target.IndexOf('?', StringComparison.Ordinal);
                var request = new RecordedRequest(parts[0], q < 0 ? target : target[..q], q < 0 ? "" : target[(q + 1)..],
                    headers.GetValueOrDefault("Content-Type") ?? "", Encoding.UTF8.GetString(body));
                Requests.Enqueue(request);
                Everything.Add(request);
                if (!await AnswerAsync(stream, request, Next(request)))
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
    }

    private Reply Next(RecordedRequest r)
    {
        var key = $"{(r.IsWatch ? "WATCH" : r.Method)} {r.Path}";
        if (_script.TryGetValue(key, out var q))
        {
            if (q.Count > 1 && q.TryDequeue(out var first))
            {
                return first;
            }

            if (q.TryPeek(out var last))
            {
                return last;
            }
        }

        return r.IsWatch ? Reply.Watch(WatchEnd.Hang)
            : r.Method is "POST" ? new Reply(201, r.Body) // created as sent
            : r.Method is "PATCH" or "PUT" ? Reply.Json("{}")
            : r.Method == "GET" && r.Path.Split('/').Length is 4 or 5 ? Reply.Json("""{"kind":"List","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}""")
            : Reply.ApiStatus(404, "NotFound", $"{r.Path} not found");
    }

    /// <returns>False when the connection must close.</returns>
    private async Task<bool> AnswerAsync(NetworkStream stream, RecordedRequest request, Reply reply)
    {
        var reason = reply.Status switch { 200 => "OK", 201 => "Created", 401 => "Unauthorized", 403 => "Forbidden", 404 => "Not Found", 409 => "Conflict", 410 => "Gone", _ => "Error" };
        if (reply.Lines is null)
        {
            var bytes = Encoding.UTF8.GetBytes(reply.Body);
            await stream.WriteAsync(Encoding.ASCII.GetBytes(
                $"HTTP/1.1 {reply.Status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {bytes.Length}\r\n\r\n"), _stop.Token);
            await stream.WriteAsync(bytes, _stop.Token);
            return true;
        }

        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"HTTP/1.1 {reply.Status} {reason}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"), _stop.Token);
        foreach (var line in reply.Lines)
        {
            var chunk = Encoding.UTF8.GetBytes(line + "\n");
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"{chunk.Length:x}\r\n"), _stop.Token);
            await stream.WriteAsync(chunk, _stop.Token);
            await stream.WriteAsync("\r\n"u8.ToArray(), _stop.Token);
            await stream.FlushAsync(_stop.Token);
        }

        switch (reply.End)
        {
            case WatchEnd.Close:
                await stream.WriteAsync("0\r\n\r\n"u8.ToArray(), _stop.Token);
                return true;
            case WatchEnd.Drop:
                await Task.Delay(50, _stop.Token);
                return false; // the socket closes mid-body: the client sees the response end prematurely
            default:
                await Task.Delay(Timeout.Infinite, _stop.Token);
                return false;
        }
    }

    private async Task<string> ReadLineAsync(NetworkStream stream)
    {
        var sb = new StringBuilder();
        var one = new byte[1];
        while (true)
        {
            if (await stream.ReadAsync(one, _stop.Token) == 0)
            {
                return sb.ToString();
            }

            if (one[0] == '\n')
            {
                return sb.ToString().TrimEnd('\r');
            }

            sb.Append((char)one[0]);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accept;
        Task[] all;
        lock (_connections)
        {
            all = [.. _connections];
        }

        await Task.WhenAll(all);
        _stop.Dispose();
    }
}
