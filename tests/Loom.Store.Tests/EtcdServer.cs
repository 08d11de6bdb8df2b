using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Loom.Store.Etcd;

namespace Loom.Store.Tests;

/// <summary>
/// A real single-member etcd on 127.0.0.1 with free ports and a throw-away data dir; disposing kills it and
/// deletes the dir. Short heartbeat/election timeouts make it lead at once and lower its minimum lease TTL to 1 s.
/// With <c>tls</c> it requires client certificates from a CA made for the run (files in the same dir).
/// </summary>
public sealed class EtcdServer : IAsyncDisposable
{
    private const string Binary = "/usr/bin/etcd";

    private readonly Process _process;
    private readonly string _dataDir;

    private EtcdServer(Process process, string dataDir, Uri clientUrl, EtcdTls? clientTls)
    {
        _process = process;
        _dataDir = dataDir;
        ClientUrl = clientUrl;
        ClientTls = clientTls;
    }

    public Uri ClientUrl { get; }

    /// <summary>A client certificate etcd accepts, when started with TLS.</summary>
    public EtcdTls? ClientTls { get; }

    /// <summary>Where the run's certificates are (and where tests may write more).</summary>
    public string Dir => _dataDir;

    public static bool Available => File.Exists(Binary);

    public static async Task<EtcdServer> StartAsync(bool tls = false)
    {
        // tmpfs when there is one: etcd fsyncs every write.
        var parent = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
        var dir = Directory.CreateDirectory(Path.Combine(parent, $"loom-etcd-{Guid.NewGuid():N}")).FullName;
        var dataDir = Path.Combine(dir, "data");
        var client = $"{(tls ? "https" : "http")}://127.0.0.1:{FreePort()}";
        var peer = $"http://127.0.0.1:{FreePort()}";
        var psi = new ProcessStartInfo(Binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
                 {
                     "--name", "loom-test", "--data-dir", dataDir,
                     "--listen-client-urls", client, "--advertise-client-urls", client,
                     "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                     "--initial-cluster", $"loom-test={peer}", "--initial-cluster-state", "new",
                     "--heartbeat-interval", "50", "--election-timeout", "250", "--logger", "zap", "--log-level", "error",
                 })
        {
            psi.ArgumentList.Add(arg);
        }

        EtcdTls? clientTls = null;
        if (tls)
        {
            using var ca = EtcdCertificateAuthority.Create("loom-test-ca");
            ca.WriteCaCertificate(Path.Combine(dir, "ca.crt"));
            ca.IssueServer("etcd", [IPAddress.Loopback], Path.Combine(dir, "server.crt"), Path.Combine(dir, "server.key"));
            ca.IssueClient("loom-test", Path.Combine(dir, "client.crt"), Path.Combine(dir, "client.key"));
            clientTls = new EtcdTls(Path.Combine(dir, "ca.crt"), Path.Combine(dir, "client.crt"), Path.Combine(dir, "client.key"));
            foreach (var arg in new[]
                     {
                         "--client-cert-auth", "--trusted-ca-file", clientTls.CaFile,
                         "--cert-file", Path.Combine(dir, "server.crt"), "--key-file", Path.Combine(dir, "server.key"),
                     })
            {
                psi.ArgumentList.Add(arg);
            }
        }

        var process = Process.Start(psi) ?? throw new InvalidOperationException("etcd did not start");
        // Drain its output so a chatty etcd never blocks on a full pipe.
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new EtcdServer(process, dir, new Uri(client), clientTls);
        try
        {
            await server.WaitHealthyAsync(TimeSpan.FromSeconds(20));
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }
        finally
        {
            _process.Dispose();
            Directory.Delete(_dataDir, recursive: true);
        }
    }

    private async Task WaitHealthyAsync(TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        await using var probe = EtcdStore.Connect(ClientUrl, tls: ClientTls);
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"etcd exited with {_process.ExitCode}");
            }

            try
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                await probe.GetRevisionAsync(cts.Token);
                return;
            }
            catch (Exception) when (deadline.Elapsed < timeout)
            {
                await Task.Delay(50);
            }
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
