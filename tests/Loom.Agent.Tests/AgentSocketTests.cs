using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Loom.Core.AgentApi;

namespace Loom.Agent.Tests;

/// <summary>The agent's socket against real clients: root and not, well-formed and not, fast and slow.</summary>
public sealed class AgentSocketTests : IDisposable
{
    private const UnixFileMode Owner = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"loom-sock-{Guid.NewGuid():N}")).FullName;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<string> _log = [];
    private int _handled;

    private string SocketPath => Path.Combine(_dir, "run", "agent.sock");

    public void Dispose()
    {
        _stop.Cancel();
        _stop.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Root_gets_answers_and_a_failing_request_gets_its_error()
    {
        using var server = Start();
        var ok = await AgentClient.SendAsync(SocketPath, new AgentRequest { Op = "status" }, TimeSpan.FromSeconds(5));
        Assert.True(ok.Ok);
        Assert.Equal("status", ok.Text);
        var failed = await AgentClient.SendAsync(SocketPath, new AgentRequest { Op = "boom" }, TimeSpan.FromSeconds(5));
        Assert.Equal("boom failed: the handler broke", failed.Error);
    }

    [Fact]
    public async Task The_socket_file_is_0600_from_the_moment_it_exists()
    {
        // Watch the path from another thread while the socket is created again and again: every sighting must be 0600.
        var seen = new List<UnixFileMode>();
        using var watching = new CancellationTokenSource();
        using var started = new ManualResetEventSlim();
        var watcher = Task.Factory.StartNew(() =>
        {
            started.Set();
            while (!watching.IsCancellationRequested)
            {
                try
                {
                    seen.Add(File.GetUnixFileMode(SocketPath));
                }
                catch (IOException)
                {
                    // not there (yet, or any more)
                }
            }
        }, TaskCreationOptions.LongRunning);
        started.Wait(TimeSpan.FromSeconds(10));
        for (var i = 0; i < 1000; i++)
        {
            using var server = Start();
            Assert.Equal(Owner, File.GetUnixFileMode(SocketPath));
            File.Delete(SocketPath);
        }

        await watching.CancelAsync();
        await watcher;
        Assert.NotEmpty(seen);
        Assert.All(seen, mode => Assert.Equal(Owner, mode));
        Assert.Empty(Directory.GetFileSystemEntries(Path.GetDirectoryName(SocketPath)!)); // no private directory left behind
    }

    [Fact]
    public async Task A_stale_socket_file_is_replaced()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(SocketPath)!);
        await File.WriteAllTextAsync(SocketPath, "left by a killed agent");
        using var server = Start();
        Assert.True((await AgentClient.SendAsync(SocketPath, new AgentRequest { Op = "status" }, TimeSpan.FromSeconds(5))).Ok);
    }

    [Fact]
    public async Task A_non_root_peer_cannot_open_the_socket_and_is_refused_if_it_could()
    {
        using var server = Start();
        Assert.Equal("EACCES", await AsNobodyAsync());

        // Were the file ever reachable (a mistaken chmod), the peer's uid still decides.
        File.SetUnixFileMode(SocketPath, Owner | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite);
        var reply = JsonSerializer.Deserialize(await AsNobodyAsync(), AgentApiJsonContext.Default.AgentResponse)!;
        Assert.False(reply.Ok);
        Assert.Equal("permission denied: the agent answers root only (you are uid 65534)", reply.Error);
        Assert.Equal(0, _handled);
        Assert.Contains(_log, l => l.Contains("uid 65534 (root only)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_oversized_request_is_refused_with_an_error()
    {
        using var server = Start();
        // 3 MiB without a newline: the agent stops reading at its limit and says why.
        var reply = await RawAsync(new string('x', 3 << 20));
        Assert.Equal($"request larger than {AgentApiServer.MaxRequestBytes} bytes", reply.Error);
        // Just over the limit, newline included.
        reply = await RawAsync("{\"op\":\"status\",\"service\":\"" + new string('x', AgentApiServer.MaxRequestBytes) + "\"}\n");
        Assert.Equal($"request larger than {AgentApiServer.MaxRequestBytes} bytes", reply.Error);
        Assert.Equal(0, _handled);
    }

    [Fact]
    public async Task A_slow_request_times_out_with_an_error()
    {
        using var server = Start(TimeSpan.FromSeconds(1));
        var clock = Stopwatch.StartNew();
        var reply = await RawAsync("{\"op\":", close: false);
        Assert.Equal("no complete request (one JSON line) within 1 s", reply.Error);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(5));
        Assert.Equal(TimeSpan.FromSeconds(5), AgentApiServer.DefaultReadTimeout);
    }

    [Fact]
    public async Task Malformed_requests_get_an_error_reply()
    {
        using var server = Start();
        Assert.StartsWith("bad request: ", (await RawAsync("{not json\n")).Error, StringComparison.Ordinal);
        Assert.StartsWith("bad request: ", (await RawAsync("{\"service\":\"default/web\"}\n")).Error, StringComparison.Ordinal); // no op
        Assert.StartsWith("bad request: ", (await RawAsync("{\"op\":\"status\",\"unknown\":[\n")).Error, StringComparison.Ordinal);
        Assert.Equal("empty request", (await RawAsync("")).Error);
        Assert.Equal("empty request", (await RawAsync("\n")).Error);
        Assert.Equal(0, _handled);
    }

    private AgentApiServer Start(TimeSpan? readTimeout = null) => AgentApiServer.Start(SocketPath, (request, _) =>
    {
        Interlocked.Increment(ref _handled);
        return request.Op == "boom"
            ? throw new InvalidOperationException("the handler broke")
            : Task.FromResult(new AgentResponse { Ok = true, Text = request.Op });
    }, line =>
    {
        lock (_log)
        {
            _log.Add(line);
        }
    }, _stop.Token, readTimeout);

    /// <summary>Sends raw bytes as root (closing our side unless <paramref name="close"/> is false) and reads the one reply line.</summary>
    private async Task<AgentResponse> RawAsync(string request, bool close = true)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath));
        try
        {
            await socket.SendAsync(Encoding.UTF8.GetBytes(request));
            if (close)
            {
                socket.Shutdown(SocketShutdown.Send);
            }
        }
        catch (SocketException)
        {
            // The agent stopped reading (too large) and closed: its answer is still waiting to be read.
        }

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var reply = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            int n;
            while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token)) > 0)
            {
                reply.Write(buffer, 0, n);
            }
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset && reply.Length > 0)
        {
            // Closing with our unread bytes still queued resets the connection, after the answer has been read.
        }

        var text = Encoding.UTF8.GetString(reply.ToArray());
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
        return JsonSerializer.Deserialize(text, AgentApiJsonContext.Default.AgentResponse)!;
    }

    /// <summary>Connects as uid/gid 65534 (nobody) from a separate process and asks for status: the reply line, or EACCES.</summary>
    private async Task<string> AsNobodyAsync()
    {
        const string Client = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(sys.argv[1])
            except PermissionError:
                print("EACCES"); sys.exit(0)
            try:
                s.sendall(b'{"op":"status"}\n')
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused before it read anything: the answer is still there to read
            print(s.makefile().readline().strip())
            """;
        var psi = new ProcessStartInfo("setpriv")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "--reuid", "65534", "--regid", "65534", "--clear-groups", "/usr/bin/python3", "-c", Client, SocketPath })
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(process.ExitCode == 0, $"client as nobody: exit {process.ExitCode}: {await stderr}");
        return (await stdout).Trim();
    }
}
