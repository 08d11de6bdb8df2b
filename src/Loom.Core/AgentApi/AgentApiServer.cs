using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Loom.Core.AgentApi;

/// <summary>
/// The server side of the agent's socket. Root only, twice over: the socket file is 0600 from the moment it has its
/// name (bound in a private 0700 directory, then renamed into place), and each peer's uid is checked with SO_PEERCRED
/// (a socket file made reachable by mistake still answers nobody else). A request is one line of at most
/// <see cref="MaxRequestBytes"/> read within the read timeout; anything else gets an error answer, never silence.
/// </summary>
public sealed class AgentApiServer : IDisposable
{
    public const int MaxRequestBytes = 1 << 20;

    public static readonly TimeSpan DefaultReadTimeout = TimeSpan.FromSeconds(5);

    private const int SolSocket = 1;
    private const int SoPeerCred = 17;

    private readonly Socket _listener;
    private readonly Func<AgentRequest, CancellationToken, Task<AgentResponse>> _handle;
    private readonly Action<string> _log;
    private readonly TimeSpan _readTimeout;

    private AgentApiServer(Socket listener, Func<AgentRequest, CancellationToken, Task<AgentResponse>> handle, Action<string> log, TimeSpan readTimeout)
    {
        _listener = listener;
        _handle = handle;
        _log = log;
        _readTimeout = readTimeout;
    }

    /// <summary>Listens on <paramref name="path"/> (replacing a socket left by a killed agent) until disposed or cancelled.</summary>
    /// <param name="handle">Answers a well-formed request; an exception it throws becomes an error answer.</param>
    /// <param name="log">Refused peers and failed requests.</param>
    public static AgentApiServer Start(string path, Func<AgentRequest, CancellationToken, Task<AgentResponse>> handle, Action<string> log,
        CancellationToken cancellationToken, TimeSpan? readTimeout = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(handle);
        ArgumentNullException.ThrowIfNull(log);
        var listener = BindPrivately(Path.GetFullPath(path));
        var server = new AgentApiServer(listener, handle, log, readTimeout ?? DefaultReadTimeout);
        _ = Task.Run(() => server.AcceptLoopAsync(cancellationToken), cancellationToken);
        return server;
    }

    public void Dispose() => _listener.Dispose();

    /// <summary>
    /// bind() creates the file with the process umask, and a chmod after it leaves a window; so the file is made
    /// where nobody else can reach it, made 0600, and only then renamed (atomically) to its public name.
    /// </summary>
    private static Socket BindPrivately(string path)
    {
        var dir = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(dir);
        var staging = Path.Combine(dir, $".sock-{Guid.NewGuid().ToString("N")[..12]}");
        Directory.CreateDirectory(staging, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            var hidden = Path.Combine(staging, "s");
            listener.Bind(new UnixDomainSocketEndPoint(hidden));
            File.SetUnixFileMode(hidden, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(64);
            File.Move(hidden, path, overwrite: true);
            return listener;
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        finally
        {
            Directory.Delete(staging, recursive: true);
        }
    }

    private async Task AcceptLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is ObjectDisposedException or OperationCanceledException or SocketException)
            {
                return;
            }

            _ = Task.Run(() => ServeAsync(client, ct), ct);
        }
    }

    private async Task ServeAsync(Socket client, CancellationToken ct)
    {
        using (client)
        {
            var stream = new NetworkStream(client, ownsSocket: false);
            await using (stream.ConfigureAwait(false))
            {
                var response = await AnswerAsync(client, stream, ct).ConfigureAwait(false);
                if (response is null)
                {
                    return; // the agent is stopping, or the peer is unknown
                }

                using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
                cts.CancelAfter(_readTimeout);
                try
                {
                    await stream.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(response, AgentApiJsonContext.Default.AgentResponse), cts.Token).ConfigureAwait(false);
                    await stream.WriteAsync("\n"u8.ToArray(), cts.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or OperationCanceledException)
                {
                    // The client went away or stopped reading; nothing to tell it.
                }
            }
        }
    }

    private async Task<AgentResponse?> AnswerAsync(Socket client, NetworkStream stream, CancellationToken ct)
    {
        int pid;
        uint uid;
        try
        {
            (pid, uid) = PeerCredentials(client);
        }
        catch (SocketException e)
        {
            _log($"api: cannot read the peer's credentials, closing: {e.Message}");
            return null;
        }

        if (uid != 0)
        {
            _log($"api: refused a request from pid {pid} uid {uid} (root only)");
            return Error($"permission denied: the agent answers root only (you are uid {uid})");
        }

        ReadOnlyMemory<byte> line;
        using (var cts = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            cts.CancelAfter(_readTimeout);
            try
            {
                var read = await ReadLineAsync(stream, cts.Token).ConfigureAwait(false);
                if (read is null)
                {
                    return Error($"request larger than {MaxRequestBytes} bytes");
                }

                line = read.Value;
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                return Error($"no complete request (one JSON line) within {_readTimeout.TotalSeconds:0.#} s");
            }
            catch (OperationCanceledException)
            {
                return null;
            }
            catch (IOException e)
            {
                return Error($"reading the request: {e.Message}");
            }
        }

        AgentRequest? request;
        try
        {
            request = line.IsEmpty ? null : AgentRequest.Decode(Encoding.UTF8.GetString(line.Span));
        }
        catch (JsonException e)
        {
            return Error($"bad request: {e.Message}");
        }

        if (request is null)
        {
            return Error("empty request");
        }

        try
        {
            return await _handle(request, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return null;
        }
        catch (Exception e)
        {
            // Any failure (a bad address in the request, the store) is the client's to know about.
            _log($"api: {request.Op} failed: {e.Message}");
            return Error($"{request.Op} failed: {e.Message}");
        }
    }

    /// <summary>Up to the first newline (or the end of the stream); null when that is more than <see cref="MaxRequestBytes"/>.</summary>
    private static async Task<ReadOnlyMemory<byte>?> ReadLineAsync(NetworkStream stream, CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (buffer.Length > MaxRequestBytes)
                {
                    return null;
                }

                Array.Resize(ref buffer, buffer.Length * 2);
            }

            var n = await stream.ReadAsync(buffer.AsMemory(length), ct).ConfigureAwait(false);
            var newline = Array.IndexOf(buffer, (byte)'\n', length, n);
            length += n;
            if (newline >= 0 || n == 0)
            {
                var end = newline >= 0 ? newline : length;
                if (end > MaxRequestBytes)
                {
                    return null; // (not "? null :", which would turn null into an empty Memory through its array conversion)
                }

                return buffer.AsMemory(0, end);
            }
        }
    }

    /// <summary>The connecting process's pid and uid as the kernel recorded them at connect() (struct ucred).</summary>
    private static (int Pid, uint Uid) PeerCredentials(Socket client)
    {
        Span<byte> ucred = stackalloc byte[12];
        var n = client.GetRawSocketOption(SolSocket, SoPeerCred, ucred);
        if (n < 12)
        {
            throw new SocketException((int)SocketError.InvalidArgument, $"SO_PEERCRED returned {n} bytes");
        }

        return (MemoryMarshal.Read<int>(ucred), MemoryMarshal.Read<uint>(ucred[4..]));
    }

    private static AgentResponse Error(string message) => new() { Error = message };
}
